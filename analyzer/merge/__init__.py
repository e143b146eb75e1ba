"""Several simultaneous captures of one transfer (``--merge``): views matched message by
message, their clocks aligned, their union fed to the unchanged core and recovery."""
