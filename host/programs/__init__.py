"""Programs: high-level operations compiled into command streams, and their results decoded.

Two kinds:

* stream builders for one-pass backends (:func:`vmm_program`, :func:`decode_outputs`;
  :mod:`.streams`);
* programs over :class:`~molxbar.host.driver.CrossbarDriver` objects, so they run on any
  transport: program-and-verify (:func:`program_and_verify`; :mod:`.verify`), real and
  complex matrices on one or more crossbars (:class:`CrossbarMatrix`, with the mappings and
  tiling of :mod:`molxbar.emulator.mapping`), the 1-D DFT (:func:`dft_on_crossbars`), the
  2-D inverse DFT of an image in blocks (:func:`idft2_on_crossbars`; these in
  :mod:`.matrices`), and a least-squares classifier trained with rank-1 pulse updates
  (:func:`train_classifier`; :mod:`.training`).
"""

from .matrices import (
    CrossbarMatrix,
    CrossbarTiles,
    dft_on_crossbars,
    idft2_on_crossbars,
    image_blocks,
    image_from_blocks,
)
from .streams import decode_outputs, vmm_program
from .training import TrainingResult, make_classes, train_classifier
from .verify import VerifyReport, program_and_verify

__all__ = [
    "vmm_program",
    "decode_outputs",
    "VerifyReport",
    "program_and_verify",
    "CrossbarTiles",
    "CrossbarMatrix",
    "dft_on_crossbars",
    "image_blocks",
    "image_from_blocks",
    "idft2_on_crossbars",
    "make_classes",
    "TrainingResult",
    "train_classifier",
]
