"""The predictions model-sources.md lists for the public models on real images (facts observed by others).

Boxes are (x1, y1, x2, y2) in original image pixels. A detector's list names its best detections at
threshold 0.3 (0.5 for faces); `NOTHING` means no detection above the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    label: str
    score: float
    box: tuple[float, float, float, float] | None = None


NOTHING: tuple[Seen, ...] = ()

# (folder fixture, file) -> observations
MOBILENET = {
    ("skimage", "chelsea.png"): (Seen("Egyptian cat", 0.71), Seen("tiger cat", 0.15), Seen("tabby", 0.13)),
    ("skimage", "coffee.png"): (Seen("espresso", 0.99),),
    ("darknet", "dog.jpg"): (Seen("malamute", 0.76),),
    ("darknet", "eagle.jpg"): (Seen("bald eagle", 0.73),),
    ("skimage", "rocket.jpg"): (Seen("space shuttle", 0.30),),
    ("skimage", "motorcycle_left.png"): (Seen("moped", 0.69),),
}

YOLO = {
    ("darknet", "dog.jpg"): (
        Seen("car", 0.70, (466, 71, 680, 170)),
        Seen("dog", 0.60, (133, 188, 370, 513)),
        Seen("bicycle", 0.59, (205, 151, 577, 448)),
    ),
    ("darknet", "person.jpg"): (
        Seen("horse", 0.93),
        Seen("person", 0.90, (184, 106, 277, 378)),
        Seen("dog", 0.89),
    ),
    ("darknet", "eagle.jpg"): (Seen("bird", 0.83),),
    ("darknet", "kite.jpg"): (Seen("kite", 0.88),),
    ("skimage", "astronaut.png"): NOTHING,
}

TAGS = {
    ("darknet", "dog.jpg"): (
        Seen("car", 0.70),
        Seen("dog", 0.60),
        Seen("bicycle", 0.59),
        Seen("truck", 0.41),
    ),
    ("darknet", "kite.jpg"): (Seen("kite", 0.88), Seen("person", 0.75)),
    ("skimage", "coffee.png"): (Seen("cup", 0.59),),
}
CHELSEA_CAT_TAG = 0.05  # "weak on chelsea (cat 0.05)"

TINY_FACE = {
    ("skimage", "astronaut.png"): (Seen("face", 0.97, (164, 75, 279, 186)),),
    ("skimage", "chelsea.png"): NOTHING,
    ("darknet", "dog.jpg"): NOTHING,
    ("darknet", "person.jpg"): NOTHING,
}

RETINA_FACE = {
    ("skimage", "astronaut.png"): (Seen("face", 1.0, (178, 59, 273, 178)),),
    ("skimage", "chelsea.png"): NOTHING,
    ("darknet", "person.jpg"): NOTHING,
}

NSFW = {  # (safe, unsafe)
    ("skimage", "chelsea.png"): (1.00, 0.00),
    ("skimage", "astronaut.png"): (0.968, 0.032),
    ("darknet", "person.jpg"): (1.00, 0.00),
}

SCORE_TOLERANCE = 0.02
BOX_TOLERANCE = 0.02  # of the image's width (x) or height (y)
