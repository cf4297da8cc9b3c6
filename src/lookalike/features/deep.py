"""Deep features: CNN descriptors, background and face features (models load lazily)."""
