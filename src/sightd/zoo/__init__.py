"""The public model zoo: real pretrained models built reproducibly from registry packages."""
