"""The command protocol, Amaranth-free: the one table of commands (:mod:`.spec`), beats
(:mod:`.beats`), the framer (:mod:`.framing`), the golden engine that answers every stream
byte for byte (:mod:`.golden_engine`), the first-difference report (:mod:`.difference`),
errors (:mod:`.errors`), the serial link (constants :mod:`.link`, frames
:mod:`.link_frames`, the board's link layer around the golden engine :mod:`.link_model`),
and the generated C header and docs/protocol.md (:mod:`.headergen`, :mod:`.docgen`)."""
