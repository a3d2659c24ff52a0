"""Loading a model from a path through the loaders that plugins declare."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from litdesk.api import LoadOptions, Model, ModelLoadError
from litdesk.core import trusted_files
from litdesk.core.jobs import Job, Progress
from litdesk.core.lasting_imports import import_lasting
from litdesk.core.messages import first_line, pickle_advice
from litdesk.core.plugins import Contribution, PluginRegistry, discover_plugins


def find_model_loader(path: Path, registry: PluginRegistry | None = None
                      ) -> Contribution | None:
    """The declared model loader that accepts ``path``, or None."""
    return (registry or discover_plugins()).find("model_loaders", path)


def load_model(path: Path | str, options: LoadOptions = LoadOptions(),
               registry: PluginRegistry | None = None) -> Model:
    """Load the model at ``path``; any failure is a :class:`ModelLoadError` naming the path.

    :class:`TrustRequired` (a ModelLoadError) means: ask the user, then call again with
    ``options.trust`` set.
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file or folder")
    loader = find_model_loader(path, registry)
    if loader is None:
        raise ModelLoadError(f"{path}: not a model any installed plugin can load")
    options = replace(options, shipped_files=trusted_files.shipped_files(path))
    try:
        import_lasting(loader.imports)
        model = loader.load_callable()(path, options)
    except ModelLoadError as error:
        advice = pickle_advice(error)
        if advice is None:
            raise
        raise ModelLoadError(f"{path}: {advice}") from error
    except Exception as error:
        advice = pickle_advice(error)
        raise ModelLoadError(f"{path}: {advice or f'{type(error).__name__}: {first_line(error)}'}"
                             ) from error
    return model


def looks_like_model(path: Path, registry: PluginRegistry | None = None) -> bool:
    """Whether some plugin declares that it loads ``path`` (used to route dropped paths)."""
    return path.exists() and find_model_loader(path, registry) is not None


def load_model_job(path: Path | str, options: LoadOptions = LoadOptions()) -> Job[Model]:
    """:func:`load_model` as a job, for the background worker."""
    path = Path(path)
    yield Progress(0, 1, f"Loading model {path.name}")
    model = load_model(path, options)
    yield Progress(1, 1, f"Loaded model {model.name}")
    return model


def model_file_patterns(registry: PluginRegistry | None = None) -> list[str]:
    """The file names and wildcards that the model loaders accept (``*.joblib``,
    ``linear_text_model.json``, ...), for a file dialog's filter."""
    loaders = (registry or discover_plugins()).model_loaders
    return list(dict.fromkeys(pattern for loader in loaders for pattern in loader.patterns))
