"""The plugin system: hook specifications, typed registries and the plugin manager.

``hookspecs`` (what plugins may implement) and ``registry`` (what registration hooks
fill) sit low in the house, since the engine uses them; ``manager`` loads plugins and
the built-ins and sits above them. Plugin authors import from :mod:`looprunner.plugin`.
"""
