"""The NumPy side of molxbar: configuration, the bit-exact golden model, the device view,
mappings and workloads, and accuracy metrics. Never imports Amaranth or cocotb."""

from .config import PRESETS, CrossbarConfig, preset
from .golden import Crossbar

__all__ = ["CrossbarConfig", "PRESETS", "preset", "Crossbar"]
