"""Triton kernels (shipped as ``rnaernie.kernels``). Import only torch and triton here."""
