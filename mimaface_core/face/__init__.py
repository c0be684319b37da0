"""Face alignment: the 512 box crop and the 256 five-point similarity crop (docs/ALIGNMENT.md §2–§6)."""
