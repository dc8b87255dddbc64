"""The `cnai` command, modelled on kubectl and built on :class:`cnai.Client`."""
