"""Simulation: the engine in the Amaranth simulator (:mod:`.simulate`, :mod:`.transport`),
the board's bridge bit-serial (:mod:`.bridge`), the cocotb benches on the generated Verilog
(:mod:`.cosim`), stall patterns (:mod:`.stalls`) and the backend registry
(:mod:`.backends`)."""
