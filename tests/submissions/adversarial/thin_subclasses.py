"""Cheat: four one-line subclasses of torch's own layers (the issue's 79/80 submission).

Expected: 0/80 - every question subclasses the torch layer it should implement.
"""

from torch import nn


class CustomLinear(nn.Linear):  # CHEAT q1
    pass


class CustomConv2D(nn.Conv2d):  # CHEAT q2
    pass


class CustomMaxPool2D(nn.MaxPool2d):  # CHEAT q3
    pass


class CustomCrossEntropyLoss(nn.CrossEntropyLoss):  # CHEAT q4
    pass
