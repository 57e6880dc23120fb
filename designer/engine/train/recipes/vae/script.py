"""The VAE recipe's exported train.py: the encoder and decoder of ``model.py`` trained as a
variational autoencoder, as :class:`~designer.engine.train.recipes.vae.VaeRecipe` does (its hooks of
the one skeleton, :class:`~designer.engine.train.recipes.script.TrainScript`)."""

from __future__ import annotations

from typing import Any

from ....model.pysource import CodegenError, literal
from ..script import (
    MAIN_CALL,
    MAKE_OPTIMIZER,
    MAKE_SCHEDULER,
    PICK_DEVICE,
    TwoNetworkScript,
    main_head,
    rate,
    two_networks,
)
from .checks import DECODER, ENCODER, vae_problems

LOOP = ('''

# ---------------------------------------------------------------------------------------------
# The VAE: encode, sample z with the reparameterisation, decode
# ---------------------------------------------------------------------------------------------

LATENT = __LATENT__  # size of the latent code z
PREVIEW = 64  # samples decoded from the fixed noise after each epoch


def targets(x, data):
    """A batch as the reconstruction target: any standardisation undone (images in [0, 1])."""
    x = x.float()
    if data.mean is not None:
        view = (1, len(data.mean)) + (1,) * (x.dim() - 2)
        mean = torch.tensor(data.mean, dtype=torch.float32, device=x.device).view(view)
        std = torch.tensor(data.std, dtype=torch.float32, device=x.device).view(view)
        x = x * std + mean
    return x


def encode(encoder, x):
    """The mean and log-variance of z: two Outputs, or one vector split in half."""
    out = encoder(x)
    if isinstance(out, tuple):
        return out[0], out[1]
    d = out.shape[1] // 2
    return out[:, :d], out[:, d:]


def vae_loss(decoded, target, mu, logvar):
    """Reconstruction + beta * KL, each summed over a sample's values, averaged over the batch."""
    cfg = CONFIG["training"]
    if cfg["vae_loss"] == "bce":  # the decoder outputs logits
        recon = nn.functional.binary_cross_entropy_with_logits(decoded, target, reduction="none")
    else:
        recon = (decoded - target) ** 2
    recon = recon.flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
    return recon + cfg["vae_beta"] * kl, recon, kl


def forward(encoder, decoder, x, data, eps=None):
    mu, logvar = encode(encoder, x)
    if eps is None:
        eps = torch.randn_like(mu)
    z = mu + torch.exp(0.5 * logvar) * eps  # the reparameterisation
    return vae_loss(decoder(z), targets(x, data), mu, logvar)
''' + MAKE_OPTIMIZER + "\n" + MAKE_SCHEDULER + '''

def train(args, encoder, decoder, optimizer, device, data, epoch, shuffle):
    """One epoch; returns the mean loss, reconstruction and KL terms."""
    encoder.train()
    decoder.train()
    params = [*encoder.parameters(), *decoder.parameters()]
    n = data.x_train.shape[0]
    perm = torch.randperm(n, generator=shuffle).to(device)
    bs = args.batch_size
    if n > bs and n % bs == 1:  # a batch of one breaks BatchNorm
        perm = perm[:-1]
    total, count = torch.zeros(3, dtype=torch.float64, device=device), 0
    batches = math.ceil(len(perm) / bs)
    for b in range(batches):
        x, _ = data.batch("train", perm[b * bs : (b + 1) * bs], augment=True, generator=shuffle)
        loss, recon, kl = forward(encoder, decoder, x, data)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if CONFIG["training"]["grad_clip"]:
            nn.utils.clip_grad_norm_(params, CONFIG["training"]["grad_clip"])
        optimizer.step()
        total += torch.stack([loss.detach(), recon.detach(), kl.detach()]).double() * x.shape[0]
        count += x.shape[0]
        if b % args.log_interval == 0 or b == batches - 1:
            if not math.isfinite(loss.item()):
                raise SystemExit(f"the loss became NaN or infinite in epoch {epoch}: lower the learning rate")
            print(f"Train epoch {epoch} [{min((b + 1) * bs, len(perm))}/{len(perm)}]  "
                  f"loss {loss.item():.4f}  recon {recon.item():.4f}  KL {kl.item():.4f}")
        if args.dry_run:
            break
    return dict(zip(("loss", "recon", "kl"), (total / max(count, 1)).tolist()))


@torch.no_grad()
def evaluate(args, encoder, decoder, device, data, noise_generator):
    """The same terms on held-out samples (z drawn with its own seeded noise)."""
    encoder.eval()
    decoder.eval()
    total, count = torch.zeros(3, dtype=torch.float64, device=device), 0
    bs = max(args.batch_size, 256)
    for start in range(0, data.x_val.shape[0], bs):
        x, _ = data.batch("val", torch.arange(start, min(start + bs, data.x_val.shape[0]), device=device))
        eps = torch.randn((x.shape[0], LATENT), generator=noise_generator).to(device)
        loss, recon, kl = forward(encoder, decoder, x, data, eps)
        total += torch.stack([loss, recon, kl]).double() * x.shape[0]
        count += x.shape[0]
        if args.dry_run:
            break
    return dict(zip(("loss", "recon", "kl"), (total / max(count, 1)).tolist()))


def save_grid(x, path, nrow=None):
    """Images (N, C, H, W) in [0, 1] tiled nrow per row (default: a square), as a PNG."""
    from PIL import Image

    x = x.float().cpu()
    if x.dim() == 2:  # vectors: one row of pixels each
        x = x[:, None, None, :]
    elif x.dim() == 3:
        x = x[:, None]
    if x.shape[1] not in (1, 3):
        x = x[:, :1]
    n, c, h, w = x.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.full((c, rows * (h + 1) + 1, cols * (w + 1) + 1), 0.5)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[:, 1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + k * (w + 1) : 1 + k * (w + 1) + w] = x[i]
    pixels = (grid.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(pixels[0] if c == 1 else pixels.transpose(1, 2, 0)).save(path)


@torch.no_grad()
def save_previews(encoder, decoder, data, fixed_noise, out, epoch):
    """Samples from the fixed noise, and validation images beside their reconstructions."""
    encoder.eval()
    decoder.eval()

    def images(decoded):
        return decoded.sigmoid() if CONFIG["training"]["vae_loss"] == "bce" else decoded.clamp(0, 1)

    save_grid(images(decoder(fixed_noise)), os.path.join(out, f"samples_epoch_{epoch:03d}.png"))
    split = "val" if data.x_val.shape[0] else "train"
    k = min(32, (data.x_val if split == "val" else data.x_train).shape[0])
    x, _ = data.batch(split, torch.arange(k, device=fixed_noise.device))
    recon = images(decoder(encode(encoder, x)[0]))
    pairs = torch.stack([targets(x, data).clamp(0, 1), recon], 1).flatten(0, 1)
    save_grid(pairs, os.path.join(out, f"reconstructions_epoch_{epoch:03d}.png"), nrow=8)

''' + PICK_DEVICE + "\n\n" + main_head(
    samples="samples per step", out="folder for last.pt and the image grids",
    seed="seed of weights, noise and shuffling",
    rates=(rate("--lr", "lr", "learning rate"), rate("--beta", "vae_beta", "weight of the KL term"))
) + '''
''' + two_networks("encoder", "decoder", "LATENT") + '''    optimizer = make_optimizer(cfg, [*encoder.parameters(), *decoder.parameters()])
    scheduler = make_scheduler(cfg, optimizer)
    os.makedirs(args.out, exist_ok=True)
    sizes = f"{data.x_train.shape[0]} training and {data.x_val.shape[0]} validation samples"
    print(f"{sizes}, device {device}")

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        t = train(args, encoder, decoder, optimizer, device, data, epoch, shuffle)
        val_noise = torch.Generator().manual_seed(args.seed + 3)
        v = evaluate(args, encoder, decoder, device, data, val_noise) if data.x_val.shape[0] else {}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(v.get("loss", t["loss"]))
        elif scheduler is not None:
            scheduler.step()
        shown = "  ".join(f"{p} loss {m['loss']:.4f} recon {m['recon']:.4f} KL {m['kl']:.4f}"
                          for p, m in (("train", t), ("val", v)) if m)
        print(f"Epoch {epoch}: {shown}  ({time.perf_counter() - start:.1f} s)")
        save_previews(encoder, decoder, data, fixed_noise, args.out, epoch)
        checkpoint = {
            "model": {"encoder": encoder.state_dict(), "decoder": decoder.state_dict()},
            "optimizer": optimizer.state_dict(),
            "epoch": epoch,
            "config": CONFIG,
            "fixed_noise": fixed_noise.cpu(),
            "metrics": {"train": t, "val": v},
        }
        torch.save(checkpoint, os.path.join(args.out, "last.pt"))
        if args.dry_run:
            break
    return encoder, decoder
''' + MAIN_CALL)

RUN_HELP = (
    "Run:",
    "    python train.py                      # settings from the project; see --help",
    "    python train.py --epochs 1 --dry-run  # check the set-up on one batch",
    "Each epoch writes checkpoints/samples_epoch_NNN.png (decoded from a fixed noise batch),",
    "checkpoints/reconstructions_epoch_NNN.png (validation images beside their reconstructions)",
    "and checkpoints/last.pt; load both trained networks with model.py's load():",
    '    decoder = load("checkpoints/last.pt")["decoder"]',
)


class VaeScript(TwoNetworkScript):
    """train.py for a VAE project (None when it lacks an encoder and a decoder)."""

    what = "VAE training script"
    run_help = RUN_HELP
    first, second, title = ENCODER, DECODER, "VAE"

    def check(self, dataset: dict[str, Any], training: dict[str, Any]) -> None:
        problems, lat = vae_problems(self.project.networks)
        errors = [p.message for p in problems if p.severity == "error"]
        if errors or lat is None or lat.d is None:
            raise CodegenError(errors[0] if errors else "the encoder and decoder have errors; fix "
                               "them first (see Problems)")
        self.latent = int(lat.d)

    def loop(self) -> str:
        return LOOP

    def markers(self) -> dict[str, str]:
        return {**super().markers(), "__LATENT__": literal(self.latent)}


def vae_train_source(project, project_dir=None, format: bool = True) -> str | None:
    """The source of ``train.py`` for a VAE project (None when it lacks an encoder and a
    decoder). Raises :class:`~designer.engine.model.pysource.CodegenError` when the settings are invalid,
    the networks do not fit together or the dataset holds token ids."""
    return VaeScript(project, project_dir).source(format)


__all__ = ["LOOP", "RUN_HELP", "VaeScript", "vae_train_source"]
