class Index:  # placeholder while the foundation is written
    pass
