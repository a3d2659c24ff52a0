"""Qt-free state and computation: sessions, loaders, jobs, plugins, devices."""
