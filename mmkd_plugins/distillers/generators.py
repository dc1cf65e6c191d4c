"""Image sources of data-free distillation: a trained generator, and
Gaussian noise (the lower bound).

Both have one interface, read by :class:`~mmkd_plugins.distillers.DataFree`:
``sample_latent(num, rng)`` draws what an image is made from, on the CPU
from ``rng`` (so that a step's images depend only on its seed, and a resumed
run makes the same images), and ``forward(latent)`` returns the images,
(N, 3, out_size, out_size), in [0, 1] pixel units and in the channel order
the detectors' preprocessor hands to the model (RGB for MMDetection's
``bgr_to_rgb=True``). Images are made at ``img_size`` and upsampled
bilinearly to ``out_size``, as DIODE makes detector images at 160 px and
upsamples them to 320: the generator stays small and fast.
"""
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..checks import check_number, check_positive_int


def _check_sizes(img_size: int, out_size: int) -> None:
    check_positive_int('img_size', img_size)
    check_positive_int('out_size', out_size)
    if out_size < img_size:
        raise ValueError(f'out_size={out_size} is smaller than img_size={img_size}: images are '
                         'made at img_size and upsampled to out_size')


def _upsample(images: Tensor, out_size: int) -> Tensor:
    if images.shape[-1] == out_size:
        return images
    return F.interpolate(images, size=(out_size, out_size), mode='bilinear', align_corners=False)


@MODELS.register_module()
class ImageGenerator(nn.Module):
    """TA-DFKD's generator (the official code's ``Generator``), for any size.

    ``z ~ N(0, I)`` (``nz``) -> linear to ``2 ngf x init_size x init_size``
    -> BN -> LeakyReLU(0.2) -> ``log2(img_size / init_size)`` times [nearest
    upsampling x2 -> conv3x3 -> BN -> LeakyReLU(0.2)] (``2 ngf`` channels,
    ``ngf`` in the last) -> conv3x3 to 3 -> sigmoid, then bilinear
    upsampling to ``out_size``. With ``img_size=32, init_size=8`` (two
    upsamplings, 128 then 64 channels) it is the official CIFAR generator.

    The BN layers after the convolutions have ``eps=0.8``: the official code
    writes ``nn.BatchNorm2d(channels, 0.8)``, whose second argument is
    ``eps`` (DCGAN code that meant the momentum). It is kept because the
    published results were obtained with it; it damps the normalisation of
    low-variance channels.

    Args:
        nz (int): Latent size. Default 1000 (the paper's).
        ngf (int): Base width. Default 64.
        img_size (int): Side of the generated image; ``img_size / init_size``
            must be a power of 2 (>= 2). Default 64.
        init_size (int): Side of the first feature map. Default 8.
        out_size (int): Side of the returned image. Default 128.
        bn_eps (float): ``eps`` of the BN layers after the convolutions.
            Default 0.8 (the official code's).
    """

    def __init__(self, nz: int = 1000, ngf: int = 64, img_size: int = 64, init_size: int = 8,
                 out_size: int = 128, bn_eps: float = 0.8):
        super().__init__()
        self.nz = check_positive_int('nz', nz)
        check_positive_int('ngf', ngf)
        check_positive_int('init_size', init_size)
        _check_sizes(img_size, out_size)
        stages = math.log2(img_size / init_size)
        if stages < 1 or stages != int(stages):
            raise ValueError(f'img_size / init_size must be a power of 2 (>= 2), got '
                             f'img_size={img_size}, init_size={init_size}')
        check_number('bn_eps', bn_eps, inclusive=False)
        self.init_size, self.img_size, self.out_size = init_size, img_size, out_size
        self.fc = nn.Linear(nz, 2 * ngf * init_size**2)
        self.stem = nn.Sequential(nn.BatchNorm2d(2 * ngf), nn.LeakyReLU(0.2, inplace=True))
        widths = [2 * ngf] * int(stages) + [ngf]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out, eps=bn_eps),
                          nn.LeakyReLU(0.2, inplace=True))
            for c_in, c_out in zip(widths[:-1], widths[1:]))
        self.to_image = nn.Sequential(nn.Conv2d(ngf, 3, 3, padding=1), nn.Sigmoid())

    def sample_latent(self, num: int, rng: torch.Generator) -> Tensor:
        """``num`` latents (num, nz) from ``rng`` (a CPU generator)."""
        return torch.randn(num, self.nz, generator=rng)

    def forward(self, z: Tensor) -> Tensor:
        """Images (N, 3, out_size, out_size) in [0, 1] from latents (N, nz)."""
        x = self.fc(z).view(z.shape[0], -1, self.init_size, self.init_size)
        x = self.stem(x)
        for block in self.blocks:
            x = block(F.interpolate(x, scale_factor=2))
        return _upsample(self.to_image(x), self.out_size)


@MODELS.register_module()
class GaussianNoiseImages(nn.Module):
    """Gaussian noise images, the lower bound of data-free distillation.

    Each pixel of an ``img_size`` image is ``0.5 + std * n``, ``n ~ N(0, 1)``,
    clipped to [0, 1], then upsampled to ``out_size``. With ``std=0.25``
    (64 of 255 grey levels) this is about N(0, 1) after MMDetection's
    ImageNet normalisation (mean 124, std 58 grey levels). Nothing is
    trained, so :class:`~mmkd_plugins.distillers.DataFree` takes no
    generator steps.

    Args:
        img_size (int): Side of the noise image. Default 64.
        out_size (int): Side of the returned image. Default 128.
        std (float): Standard deviation in [0, 1] pixel units. Default 0.25.
    """

    def __init__(self, img_size: int = 64, out_size: int = 128, std: float = 0.25):
        super().__init__()
        _check_sizes(img_size, out_size)
        self.img_size, self.out_size = img_size, out_size
        self.std = check_number('std', std, inclusive=False)

    def sample_latent(self, num: int, rng: torch.Generator) -> Tensor:
        """The noise itself, (num, 3, img_size, img_size)."""
        return torch.randn(num, 3, self.img_size, self.img_size, generator=rng)

    def forward(self, noise: Tensor) -> Tensor:
        return _upsample((0.5 + self.std * noise).clamp(0, 1), self.out_size)
