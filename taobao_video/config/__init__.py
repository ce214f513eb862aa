"""Settings: ``settings.toml`` plus the environment → one frozen, validated Settings; secrets only from the env.

``names``     stdlib only: the variable and file names, the secret rule, the SQLite and time-zone rules
``peek``      stdlib only: the catalog URL, folder and quota zone for read commands, or None (then load fully)
``checks``    the value checks the models share
``models``    the pydantic section models, ``Settings`` and ``AppSpec``
``problems``  what is wrong, as the user reads it: file, key, problem; unknown keys with a suggestion
``load``      ``load_settings`` and ``settings_from_mapping``: the file and the environment into a Settings

This package re-exports nothing: a read command imports ``config.peek`` and must not pay for pydantic, which
importing ``models`` here would cost. The public API (``taobao_video.load_settings``) is the package root's.
"""
