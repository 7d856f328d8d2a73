"""The Cython matching core: one idea per module, each .pyx with its .pxd contract (see the README layout)."""
