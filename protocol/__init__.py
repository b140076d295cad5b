"""The command protocol, Amaranth-free: the one table of commands (:mod:`.spec`), the field
widths and lengths of a configuration (:mod:`.layout`), the bytes of commands and responses
(:mod:`.codec`), beats (:mod:`.beats`), the framer (:mod:`.framing`), the golden engine that
answers every stream byte for byte (:mod:`.golden_engine`), the first-difference report
(:mod:`.difference`), errors (:mod:`.errors`), the serial link (constants :mod:`.link`,
frames :mod:`.link_frames`, the board's link layer around the golden engine
:mod:`.link_model`), and the generated C header and docs/protocol.md (:mod:`.headergen`,
:mod:`.docgen`)."""

# The command table first: it re-exports the layout and the codec, which read it.
from . import spec as spec
