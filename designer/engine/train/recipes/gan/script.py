"""The GAN recipe's exported train.py: the generator and discriminator of ``model.py`` trained
against each other, as :mod:`.training` does (its hooks of the one skeleton,
:class:`~designer.engine.train.recipes.script.TrainScript`: the data part is every recipe's; the loop
is written here). The noise shape enters as a tuple of integers; nothing else from the project
becomes code.
"""

from __future__ import annotations

from typing import Any

from ....model.pysource import CodegenError, literal
from ..script import (
    MAIN_CALL,
    MAKE_OPTIMIZER,
    PICK_DEVICE,
    TwoNetworkScript,
    main_head,
    rate,
    two_networks,
)
from .checks import DISCRIMINATOR, GENERATOR

LOOP = ('''

# ---------------------------------------------------------------------------------------------
# The GAN: discriminator and generator steps in turn
# ---------------------------------------------------------------------------------------------

NOISE_SHAPE = __NOISE_SHAPE__  # one noise sample: the generator's input
PREVIEW = 64  # samples drawn from the fixed noise after each epoch


def real_images(x, data):
    """A batch as the GAN sees it: values back in [0, 1] (any standardisation undone), then
    scaled to [-1, 1] to match the generator's Tanh."""
    x = x.float()
    if data.mean is not None:
        view = (1, len(data.mean)) + (1,) * (x.dim() - 2)
        mean = torch.tensor(data.mean, dtype=torch.float32, device=x.device).view(view)
        std = torch.tensor(data.std, dtype=torch.float32, device=x.device).view(view)
        x = x * std + mean
    return x * 2.0 - 1.0

''' + MAKE_OPTIMIZER + '''

def discriminator_loss(bce, d_real, d_fake):
    """Real samples should score 1, fakes 0 (BCE with logits, summed as in PyTorch's DCGAN example)."""
    return bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))


def generator_loss(bce, d_fake):
    """Non-saturating: make D score the fakes 1. Minimax: minimise log(1 - D(G(z)))."""
    if CONFIG["training"]["gan_loss"] == "minimax":
        return -bce(d_fake, torch.zeros_like(d_fake))
    return bce(d_fake, torch.ones_like(d_fake))


def step(optimizer, loss, model):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if CONFIG["training"]["grad_clip"]:
        nn.utils.clip_grad_norm_(model.parameters(), CONFIG["training"]["grad_clip"])
    optimizer.step()


def scores(loss_d, loss_g, d_real, d_fake):
    """Losses and the mean probabilities D(x) and D(G(z)), as one tensor (read at log time)."""
    return torch.stack([loss_d.detach(), loss_g.detach(), torch.sigmoid(d_real.detach()).mean(),
                        torch.sigmoid(d_fake.detach()).mean()]).double()


def train(args, generator, discriminator, opt_g, opt_d, device, data, epoch, shuffle):
    """One epoch; returns the mean D and G losses, D(x) and D(G(z))."""
    generator.train()
    discriminator.train()
    bce = nn.BCEWithLogitsLoss()
    d_steps = CONFIG["training"]["d_steps"]
    n = data.x_train.shape[0]
    perm = torch.randperm(n, generator=shuffle).to(device)
    bs = args.batch_size
    if n > bs and n % bs == 1:  # a batch of one breaks BatchNorm
        perm = perm[:-1]
    total, count = torch.zeros(4, dtype=torch.float64, device=device), 0
    batches = math.ceil(len(perm) / bs)
    for b in range(batches):
        x, _ = data.batch("train", perm[b * bs : (b + 1) * bs])
        real = real_images(x, data)
        m = real.shape[0]
        for k in range(d_steps):
            noise = torch.randn((m, *NOISE_SHAPE), device=device)
            if k == d_steps - 1:  # these fakes also train the generator below
                fake = generator(noise)
            else:
                with torch.no_grad():
                    fake = generator(noise)
            d_real = discriminator(real)
            d_fake = discriminator(fake.detach())
            loss_d = discriminator_loss(bce, d_real, d_fake)
            step(opt_d, loss_d, discriminator)
        loss_g = generator_loss(bce, discriminator(fake))
        step(opt_g, loss_g, generator)
        total += scores(loss_d, loss_g, d_real, d_fake) * m
        count += m
        if b % args.log_interval == 0 or b == batches - 1:
            if not math.isfinite(loss_d.item() + loss_g.item()):
                raise SystemExit(f"the losses became NaN or infinite in epoch {epoch}: lower the learning rates")
            print(f"Train epoch {epoch} [{min((b + 1) * bs, len(perm))}/{len(perm)}]  "
                  f"D {loss_d.item():.4f}  G {loss_g.item():.4f}")
        if args.dry_run:
            break
    return dict(zip(("loss_d", "loss_g", "d_real", "d_fake"), (total / max(count, 1)).tolist()))


@torch.no_grad()
def evaluate(args, generator, discriminator, device, data, noise_generator):
    """The same scores on held-out real images and fresh fakes, without updating anything."""
    generator.eval()
    discriminator.eval()
    bce = nn.BCEWithLogitsLoss()
    total, count = torch.zeros(4, dtype=torch.float64, device=device), 0
    bs = max(args.batch_size, 256)
    for start in range(0, data.x_val.shape[0], bs):
        x, _ = data.batch("val", torch.arange(start, min(start + bs, data.x_val.shape[0]), device=device))
        real = real_images(x, data)
        noise = torch.randn((real.shape[0], *NOISE_SHAPE), generator=noise_generator).to(device)
        d_real = discriminator(real)
        d_fake = discriminator(generator(noise))
        loss_d = discriminator_loss(bce, d_real, d_fake)
        total += scores(loss_d, generator_loss(bce, d_fake), d_real, d_fake) * real.shape[0]
        count += real.shape[0]
        if args.dry_run:
            break
    return dict(zip(("loss_d", "loss_g", "d_real", "d_fake"), (total / max(count, 1)).tolist()))


@torch.no_grad()
def save_samples(generator, fixed_noise, path):
    """The generator's images from the fixed noise, tiled 8 per row, as a PNG."""
    from PIL import Image

    generator.eval()
    x = ((generator(fixed_noise).float().clamp(-1, 1) + 1) / 2).cpu()
    generator.train()
    if x.dim() == 2:  # vectors: one row of pixels each
        x = x[:, None, None, :]
    elif x.dim() == 3:
        x = x[:, None]
    if x.shape[1] not in (1, 3):
        x = x[:, :1]
    n, c, h, w = x.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.full((c, rows * (h + 1) + 1, cols * (w + 1) + 1), 0.5)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[:, 1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + k * (w + 1) : 1 + k * (w + 1) + w] = x[i]
    pixels = (grid * 255).round().to(torch.uint8).numpy()
    Image.fromarray(pixels[0] if c == 1 else pixels.transpose(1, 2, 0)).save(path)

''' + PICK_DEVICE + "\n\n" + main_head(
    samples="samples per step", out="folder for last.pt and the sample grids",
    seed="seed of weights, noise and shuffling",
    rates=(rate("--lr-d", "lr_d", "discriminator learning rate"),
           rate("--lr-g", "lr_g", "generator learning rate"))) + '''
''' + two_networks("generator", "discriminator", "*NOISE_SHAPE") + '''    betas = (cfg["beta1"], 0.999)  # beta1 = 0.5 is the usual GAN choice
    opt_d = make_optimizer(cfg, discriminator.parameters(), args.lr_d, betas)
    opt_g = make_optimizer(cfg, generator.parameters(), args.lr_g, betas)
    os.makedirs(args.out, exist_ok=True)
    print(f"{data.x_train.shape[0]} training and {data.x_val.shape[0]} validation samples, device {device}")

    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        t = train(args, generator, discriminator, opt_g, opt_d, device, data, epoch, shuffle)
        val_noise = torch.Generator().manual_seed(args.seed + 3)
        v = evaluate(args, generator, discriminator, device, data, val_noise) if data.x_val.shape[0] else {}
        shown = "  ".join(f"{p} D {m['loss_d']:.4f} G {m['loss_g']:.4f} D(x) {m['d_real']:.2f} "
                          f"D(G(z)) {m['d_fake']:.2f}" for p, m in (("train", t), ("val", v)) if m)
        print(f"Epoch {epoch}: {shown}  ({time.perf_counter() - start:.1f} s)")
        save_samples(generator, fixed_noise, os.path.join(args.out, f"samples_epoch_{epoch:03d}.png"))
        checkpoint = {
            "model": {"generator": generator.state_dict(), "discriminator": discriminator.state_dict()},
            "optimizer": {"generator": opt_g.state_dict(), "discriminator": opt_d.state_dict()},
            "epoch": epoch,
            "config": CONFIG,
            "fixed_noise": fixed_noise.cpu(),
        }
        torch.save(checkpoint, os.path.join(args.out, "last.pt"))
        if args.dry_run:
            break
    return generator, discriminator
''' + MAIN_CALL)

RUN_HELP = (
    "Run:",
    "    python train.py                      # settings from the project; see --help",
    "    python train.py --epochs 1 --dry-run  # check the set-up on one batch",
    "Each epoch writes checkpoints/samples_epoch_NNN.png (images from a fixed noise batch) and",
    "checkpoints/last.pt (the last epoch; there is no best.pt: the D and G losses do not",
    "measure sample quality, so look at the sample grids); load both networks with model.py's",
    "load():",
    '    generator = load("checkpoints/last.pt")["generator"]',
)


class GanScript(TwoNetworkScript):
    """train.py for a GAN project (None without a generator and a discriminator)."""

    what = "GAN training script"
    run_help = RUN_HELP
    first, second, title = GENERATOR, DISCRIMINATOR, "GAN"

    def check(self, dataset: dict[str, Any], training: dict[str, Any]) -> None:
        inputs = self.project.networks[GENERATOR].inputs()
        if len(inputs) != 1:
            raise CodegenError("the generator needs exactly one Input (the noise vector)")
        self.noise = tuple(int(s) for s in inputs[0].params["shape"])

    def loop(self) -> str:
        return LOOP

    def markers(self) -> dict[str, str]:
        return {**super().markers(), "__NOISE_SHAPE__": literal(self.noise)}


def gan_train_source(project, project_dir=None, format: bool = True) -> str | None:
    """The source of ``train.py`` for a GAN project (None for any other project).

    Raises :class:`CodegenError` when the settings are invalid or the dataset holds token ids."""
    return GanScript(project, project_dir).source(format)


__all__ = ["LOOP", "RUN_HELP", "GanScript", "gan_train_source"]
