"""dgnlib: Dendritic Gated Networks and dis-inhibitory control in JAX."""
__version__ = "0.1.0"
