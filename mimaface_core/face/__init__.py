"""Face alignment: the 512 box crop and the 256 five-point similarity crop (spec §1.1–1.3)."""
