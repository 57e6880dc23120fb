"""Code and models in and out: PyTorch code export, importing torch models, export of files (ONNX, torch.export)."""
