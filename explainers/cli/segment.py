"""``python -m explainers segment``: the automatic lesion mask of a dermoscopy image.

Writes a PNG at the image's size, white lesion on black skin (classical pipeline, see
``explainers.trust.segmentation``; not validated against expert masks here), and prints the
outline's stability: the IoU of the outlines at a stricter and a looser threshold (below 0.8
the outline is uncertain).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from explainers.errors import ExplainerError
from explainers.images import load_image
from explainers.trust.segmentation import STABLE_IOU, mask_png, outline


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True, metavar="FILE", help="the dermoscopy image")
    p.add_argument(
        "--out", required=True, metavar="MASK.png", help="where to write the mask (.png)"
    )


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise ExplainerError(f"--out must end in .png, got '{args.out}'")
    if not out.parent.exists():
        raise ExplainerError(f"the folder for --out does not exist: {out.parent}")
    image = load_image(args.image)
    found = outline(image)
    mask = found.mask
    try:
        mask_png(mask).save(out, format="PNG")
    except OSError as exc:
        raise ExplainerError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(
        f"wrote {out}: lesion {mask.mean() * 100:.1f} % of the image ({image.width}x{image.height} px); "
        f"outline stability {found.stability:.2f} ({'uncertain' if found.uncertain else 'stable'}: "
        f"IoU of the outlines at two thresholds, uncertain below {STABLE_IOU})"
    )
    return 0
