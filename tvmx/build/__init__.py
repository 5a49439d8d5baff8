"""The build directory: numbered stage folders, manifest.json and commands.sh."""
