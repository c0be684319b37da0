"""Media in and out: images (phone photos included), videos, GIFs and frame folders read with
PyAV/PIL, videos written with PyAV, affine warps, and outputs written atomically."""
