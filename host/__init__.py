"""The host side, Amaranth-free: :class:`~molxbar.host.driver.CrossbarDriver`, the
transports it talks through (:mod:`.transports`) and programs over drivers
(:mod:`.programs`)."""
