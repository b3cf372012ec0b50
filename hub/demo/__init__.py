"""The main job on embedded defaults: `hub demo`."""
