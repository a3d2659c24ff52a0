"""Per-example attributions: why a model gave an example its output, one score per token,
input feature or image pixel.

Gradient methods (gradient L2 norm, gradient × input, integrated gradients) run Captum on the
input token embeddings of models implementing :class:`~litdesk.api.model.GradientTextModel`,
or on the pixel tensor of models implementing :class:`~litdesk.api.model.GradientImageModel`,
all the examples of a batch (and all the integration steps) in one pass, the batch halved on
out-of-memory. Model-agnostic methods (LIME, occlusion over the words of a text field,
KernelSHAP over tabular inputs) run Captum on a forward function wrapping ``model.predict``, so
they work for any model: scikit-learn, ONNX, the JSON linear text model. Every result is cached
per example. torch and captum are imported inside the functions that use them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from litdesk.api import Dataset, Model, types
from litdesk.api.model import Example, GradientImageModel, GradientTextModel
from litdesk.core.cache import ResultCache, result_key
from litdesk.core.jobs import Job, Progress
from litdesk.core.outputs import unlabelled_example
from litdesk.core.predict import bind_inputs, is_out_of_memory, predict_rows
from litdesk.core.tokens import sum_over_spans, token_spans


@dataclass(frozen=True)
class Attribution:
    """One explanation of one model's output for one example."""

    model_name: str
    method: str  # a key of METHODS
    features: tuple[str, ...]  # the tokens (text), the input field names (tabular), () (image)
    scores: np.ndarray  # float64, one per feature; for an image, height × width (one per pixel)
    signed: bool  # True when scores may be negative (push towards / against)
    kind: str = "tokens"  # "tokens", "features" or "image"
    target: str = ""  # the class (label) explained, "" for a regression score
    completeness_error: float | None = None  # integrated gradients only
    text: str = ""  # the input text the tokens come from (for word aggregation)
    image: bytes = b""  # the encoded image explained (kind "image")
    #: Where ``scores`` lie on ``image`` (kind "image"): (left, top, right, bottom) fractions of
    #: its width and height, the part of it the model's pixel tensor shows.
    region: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    #: Made readable (:func:`readable_attribution`): whether each feature begins a word.
    word_starts: tuple[bool, ...] = ()


@dataclass(frozen=True)
class MethodInfo:
    """How a method is shown and its parameters' defaults."""

    label: str
    defaults: Mapping[str, Any]
    signed: bool


def _info(label: str, signed: bool, **defaults: Any) -> MethodInfo:
    return MethodInfo(label, MappingProxyType(defaults), signed)


#: Every method, by key. Gradient methods explain the target's logit; the model-agnostic ones its
#: probability (or the regression score).
METHODS: Mapping[str, MethodInfo] = MappingProxyType({
    "model_salience": _info("Own attribution", True),
    "grad_l2": _info("Gradient L2 norm", False),
    "grad_dot_input": _info("Gradient × input", True),
    "integrated_gradients": _info("Integrated gradients", True, steps=30, baseline="pad"),
    "lime": _info("LIME", True, samples=256, kernel_width=0.25, seed=0),
    "occlusion": _info("Occlusion", True, mask=""),
    "kernel_shap": _info("KernelSHAP", True, samples=256, seed=0),
})
GRADIENT_METHODS = ("grad_l2", "grad_dot_input", "integrated_gradients")
TEXT_METHODS = ("lime", "occlusion")
#: Integrated gradients' baselines. "pad": the model's own empty input, the padding token's
#: embedding at each real token of a text, a black image (GradientImageModel.baseline_pixels) for
#: an image; "zeros": zero embeddings at the real tokens, or the all-zero pixel tensor (after
#: normalisation: the mean colour, for a model that normalises its pixels by mean and spread).
IG_BASELINES = ("pad", "zeros")
#: Integration rule: Gauss-Legendre reaches a completeness error far below 1% on the demo BERT
#: at 30 steps, where the Riemann rules need several hundred.
IG_RULE = "gausslegendre"
#: Embedding rows (examples × integration steps) per forward pass of integrated gradients.
IG_ROWS_PER_PASS = {"cpu": 512, "cuda": 8192}
#: The same for images (a pixel tensor row costs what a long text does), at most.
IG_IMAGES_PER_PASS = {"cpu": 16, "cuda": 512}
#: Perturbed inputs per ``predict`` call of the model-agnostic methods.
PERTURBATIONS_PER_CALL = 64
#: Below this |f(x) − f(baseline)| the completeness error is undefined (NaN).
FLAT_PATH = 1e-6



# --- Which methods apply ---------------------------------------------------------------------


def _explained_output(model: Model) -> tuple[str, tuple[str, ...]] | None:
    """The output the model-agnostic methods explain, and its target names: the first
    MulticlassPreds (one per class), else the first RegressionScore ("")."""
    spec = model.output_spec()
    classes = types.first_spec_key(spec, types.MulticlassPreds)
    if classes is not None:
        return classes, tuple(spec[classes].vocab)
    score = types.first_spec_key(spec, types.RegressionScore)
    return None if score is None else (score, ("",))


def _label_fields(model: Model) -> set[str]:
    return {t.parent for t in model.output_spec().values()
            if isinstance(t, (types.MulticlassPreds, types.RegressionScore)) and t.parent}


def _text_field(model: Model) -> str | None:
    if isinstance(model, GradientTextModel):
        return model.text_field
    return types.first_spec_key(model.input_spec(), types.TextSegment)


def tabular_fields(model: Model) -> list[str]:
    """The model's number and category inputs other than its gold label fields."""
    labels = _label_fields(model)
    return [name for name in types.find_spec_keys(model.input_spec(),
                                                  (types.Scalar, types.CategoryLabel))
            if name not in labels]


def _has_embedding_gradients(model: Model) -> bool:
    return isinstance(model, GradientTextModel) and bool(model.gradient_targets())


def _has_pixel_gradients(model: Model) -> bool:
    return isinstance(model, GradientImageModel) and bool(model.gradient_targets())


def _output_gradients(model: Model) -> tuple[str, str, str | None] | None:
    """(gradients, tokens, embeddings or None): the output fields of a model that returns its
    own token gradients (LIT's TokenGradients, e.g. a LIT model through the bridge)."""
    spec = model.output_spec()
    for name, field_type in spec.items():
        if isinstance(field_type, types.TokenGradients) and field_type.align in spec:
            embeddings = field_type.grad_for if field_type.grad_for in spec else None
            return name, field_type.align, embeddings
    return None


def _own_salience(model: Model) -> tuple[str, str] | None:
    """(salience, tokens): the output fields of a model that attributes its own prediction to
    its tokens (a TokenSalience aligned with a Tokens output), or None."""
    spec = model.output_spec()
    for name, field_type in spec.items():
        if isinstance(field_type, types.TokenSalience) \
                and isinstance(spec.get(field_type.align), types.Tokens):
            return name, field_type.align  # type: ignore[return-value]
    return None


def methods_for(model: Model) -> list[str]:
    """The METHODS keys that apply to this model (gradient methods only where the model has
    gradients, its own attribution only where it outputs one)."""
    # Results opened from a file answer only the examples as predicted, gold labels included;
    # the model's own attribution is asked for without them (of the class it predicts).
    known_inputs_only = getattr(model, "known_inputs_only", False)
    methods = ["model_salience"] if _own_salience(model) and not known_inputs_only else []
    if _has_embedding_gradients(model) or _has_pixel_gradients(model):
        methods.extend(GRADIENT_METHODS)
    elif (fields := _output_gradients(model)) is not None:
        methods.extend(["grad_l2", "grad_dot_input"] if fields[2] else ["grad_l2"])
    # Perturbation methods run the model on texts and rows it has never seen: not results
    # opened from a file, which answer only the dataset's own rows.
    if _explained_output(model) is not None and not known_inputs_only:
        if _text_field(model) is not None:
            methods.extend(TEXT_METHODS)
        if tabular_fields(model):
            methods.append("kernel_shap")
    return methods


def _settings(method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method's defaults updated by ``params``, checked; ValueError names what is wrong."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    defaults = METHODS[method].defaults
    unknown = sorted(set(params or {}) - set(defaults))
    if unknown:
        expected = ", ".join(defaults) or "none"
        raise ValueError(f"{method} has no parameter {', '.join(unknown)} (it takes: {expected})")
    settings = {**defaults, **(params or {})}
    for name in ("steps", "samples"):
        if name in settings and (not isinstance(settings[name], int) or settings[name] < 1):
            raise ValueError(f"{name} must be a positive whole number, not {settings[name]!r}")
    if "kernel_width" in settings and not float(settings["kernel_width"]) > 0:
        raise ValueError(f"kernel_width must be positive, not {settings['kernel_width']!r}")
    if "baseline" in settings and settings["baseline"] not in IG_BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(IG_BASELINES)}, "
                         f"not {settings['baseline']!r}")
    return settings


def _target_index(targets: tuple[str, ...], target: str | None) -> int | None:
    if target is None:
        return None
    if target not in targets:
        shown = ", ".join(repr(name) for name in targets)
        raise ValueError(f"target {target!r} is not one of the model's outputs ({shown})")
    return targets.index(target)


# --- Batches that shrink on out-of-memory ----------------------------------------------------


def _halving_batches(items: Sequence[Any], size: int,
                     run: Callable[[Sequence[Any]], list[Any]]) -> Iterator[list[Any]]:
    """``run`` over ``items`` in batches of ``size``, yielding each batch's results; on a device
    out-of-memory error the batch is halved and retried."""
    start = 0
    while start < len(items):
        batch = items[start:start + size]
        try:
            results = run(batch)
        except Exception as error:
            if not is_out_of_memory(error) or size == 1:
                raise
            size //= 2
            continue
        start += len(batch)
        yield results


# --- Gradient methods ------------------------------------------------------------------------


def _captum_attributions(forward: Callable[..., Any], inputs: Any, args: tuple[Any, ...],
                         method: str, settings: Mapping[str, Any], target: int | None,
                         baseline: Callable[[], Any], rows_per_pass: int | None = None
                         ) -> tuple[Any, Any, list[float | None]]:
    """Captum's attributions of ``forward``'s logits with respect to ``inputs`` (a batch), for
    the class ``target`` (None: each row's predicted class): the attributions (shaped like
    ``inputs``), the classes explained, and per row the completeness error of integrated
    gradients (None for the other methods), whose baseline is ``baseline()``."""
    import torch
    from captum.attr import InputXGradient, IntegratedGradients, Saliency

    with torch.no_grad():
        logits = forward(inputs, *args)
    targets = (logits.argmax(dim=-1) if target is None
               else torch.full((len(inputs),), target, device=logits.device))
    if method == "grad_l2":
        attributions = Saliency(forward).attribute(inputs.requires_grad_(True), target=targets,
                                                   additional_forward_args=args, abs=False)
        return attributions, targets, [None] * len(inputs)
    if method == "grad_dot_input":
        attributions = InputXGradient(forward).attribute(
            inputs.requires_grad_(True), target=targets, additional_forward_args=args)
        return attributions, targets, [None] * len(inputs)
    start = baseline()
    with torch.no_grad():
        baseline_logits = forward(start, *args)
    attributions = IntegratedGradients(forward).attribute(
        inputs, baselines=start, target=targets, additional_forward_args=args,
        n_steps=settings["steps"], method=IG_RULE, internal_batch_size=rows_per_pass)
    # Captum's convergence delta, from the end-point scores computed above anyway:
    # sum of attributions − (f(x) − f(baseline)).
    rows = torch.arange(len(inputs), device=logits.device)
    path = (logits[rows, targets] - baseline_logits[rows, targets]).double()
    deltas = (attributions.double().flatten(1).sum(dim=1) - path).abs()
    errors = [float(delta / abs(change)) if abs(change) > FLAT_PATH else math.nan
              for delta, change in zip(deltas.tolist(), path.tolist())]
    return attributions, targets, errors


def _normalised(scores: np.ndarray) -> np.ndarray:
    """Gradient L2 norms scaled to sum to 1 (unchanged when they are all zero)."""
    total = scores.sum()
    return scores / total if total > 0 else scores


def _gradient_batch(model: GradientTextModel, examples: Sequence[Example], method: str,
                    settings: Mapping[str, Any], target: int | None) -> list[dict[str, Any]]:
    """One padded batch through Captum: per example, tokens, scores, target and (integrated
    gradients) the completeness error."""
    import torch

    batch = model.embed_texts([str(example.get(model.text_field) or "") for example in examples])
    embeddings = batch.embeddings

    def baseline() -> Any:
        if settings["baseline"] != "zeros":
            return batch.baseline
        # zeros at the real tokens; padding stays padding
        real = torch.zeros(embeddings.shape[:2], dtype=torch.bool, device=embeddings.device)
        for row, kept in enumerate(batch.kept):
            real[row, torch.as_tensor(kept, dtype=torch.long)] = True
        return torch.where(real[..., None], torch.zeros_like(embeddings), embeddings)

    attributions, targets, errors = _captum_attributions(
        model.logits_from_embeddings, embeddings, batch.forward_args, method, settings, target,
        baseline)
    if method == "grad_l2":
        scores = attributions.float().norm(dim=-1)
    elif method == "grad_dot_input":
        scores = attributions.float().sum(dim=-1)
    else:
        scores = attributions.double().sum(dim=-1)
    scores = scores.detach().double().cpu().numpy()
    results = []
    for row, kept in enumerate(batch.kept):
        row_scores = scores[row, np.asarray(kept)]
        if method == "grad_l2":
            row_scores = _normalised(row_scores)
        results.append({"features": list(batch.tokens[row]), "scores": row_scores,
                        "target": int(targets[row]), "completeness_error": errors[row]})
    return results


def _image_gradient_batch(model: GradientImageModel, examples: Sequence[Example], method: str,
                          settings: Mapping[str, Any], target: int | None
                          ) -> list[dict[str, Any]]:
    """A batch of images through Captum on their pixel tensor: per example, a height × width
    map (the channels reduced: L2 norm for gradients, summed for the signed methods), the
    target, the region of the image it covers and (integrated gradients) the completeness
    error."""
    images = [example.get(model.image_field) for example in examples]
    pixels = model.pixels_from_images(images)

    def baseline() -> Any:
        if settings["baseline"] == "zeros":
            return pixels.new_zeros(pixels.shape)
        return model.baseline_pixels(pixels)

    device = str(pixels.device).split(":")[0]
    attributions, targets, errors = _captum_attributions(
        model.logits_from_pixels, pixels, (), method, settings, target, baseline,
        IG_IMAGES_PER_PASS.get(device, IG_IMAGES_PER_PASS["cuda"]))
    reduced = (attributions.float().norm(dim=1) if method == "grad_l2"
               else attributions.double().sum(dim=1))
    scores = reduced.detach().double().cpu().numpy()
    return [{"features": [], "scores": _normalised(scores[row]) if method == "grad_l2"
             else scores[row], "target": int(targets[row]), "completeness_error": errors[row],
             "region": list(model.pixel_region(image))}
            for row, image in enumerate(images)]


def _output_gradient_batch(model: Model, examples: Sequence[Example], method: str
                           ) -> list[dict[str, Any]]:
    """Gradient L2 norm or gradient × input from the token gradients the model outputs itself
    (for the class it chooses: without gold labels, its prediction)."""
    gradients, tokens, embeddings = _output_gradients(model)  # type: ignore[misc]
    output = _explained_output(model)
    fields = [gradients, tokens, *([embeddings] if embeddings else []),
              *([output[0]] if output else [])]
    results = []
    for result in model.predict_fields(list(examples), fields):
        grads = np.asarray(result[gradients], dtype=np.float64)
        if method == "grad_l2":
            scores = np.linalg.norm(grads, axis=-1)
            scores = scores / scores.sum() if scores.sum() > 0 else scores
        else:
            scores = (grads * np.asarray(result[embeddings], dtype=np.float64)).sum(axis=-1)
        target = int(np.argmax(result[output[0]])) if output else 0
        results.append({"features": list(result[tokens]), "scores": scores, "target": target})
    return results


def _own_salience_batch(model: Model, examples: Sequence[Example]) -> list[dict[str, Any]]:
    """The token salience the model outputs itself, for the class it chooses (as its output
    gradients are)."""
    salience, tokens = _own_salience(model)  # type: ignore[misc]
    output = _explained_output(model)
    fields = [salience, tokens, *([output[0]] if output else [])]
    return [{"features": list(result[tokens]),
             "scores": np.asarray(result[salience], dtype=np.float64),
             "target": int(np.argmax(result[output[0]])) if output else 0}
            for result in model.predict_fields(list(examples), fields)]


def _gradient_batch_size(model: Model, method: str, settings: Mapping[str, Any]) -> int:
    if method != "integrated_gradients":
        return model.max_minibatch_size()
    device = str(getattr(model, "device", "cpu")).split(":")[0]
    table = IG_IMAGES_PER_PASS if _has_pixel_gradients(model) else IG_ROWS_PER_PASS
    return max(1, table.get(device, table["cuda"]) // settings["steps"])


# --- Model-agnostic methods ------------------------------------------------------------------


def _scores_function(model: Model, output: str, examples: Callable[[Any], list[Example]]
                     ) -> Callable[[Any], Any]:
    """A Captum forward function: a tensor of perturbations in, the model's ``output`` for the
    examples they stand for out (a float64 tensor, one row per perturbation)."""
    import torch

    def forward(perturbations: Any) -> Any:
        outputs = predict_rows(model, examples(perturbations), model.max_minibatch_size(),
                               [output])
        values = [np.atleast_1d(np.asarray(result[output], dtype=np.float64))
                  for result in outputs]
        return torch.from_numpy(np.stack(values))

    return forward


def _predicted_index(model: Model, output: str, example: Example) -> int:
    (result,) = model.predict_fields([example], [output])
    return int(np.argmax(np.atleast_1d(np.asarray(result[output], dtype=np.float64))))


def _presence_kernel(width: float) -> Callable[..., Any]:
    """LIME's weight of a perturbed text: an exponential kernel on the cosine distance between
    its word-presence vector and the original's (all ones)."""
    import torch

    def similarity(_original: Any, _perturbed: Any, present: Any, **_: Any) -> Any:
        kept, total = float(present.sum()), present.numel()
        distance = 1.0 - math.sqrt(kept / total)
        return torch.tensor([math.exp(-distance ** 2 / width ** 2)])

    return similarity


def _text_attribution(model: Model, example: Example, method: str,
                      settings: Mapping[str, Any], target: int | None) -> dict[str, Any]:
    """LIME or occlusion over the whitespace-separated words of the model's text field.

    A perturbation is a vector of word positions, −1 where a word is dropped (LIME) or replaced
    by ``settings["mask"]`` (occlusion; "" drops it)."""
    import torch
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import FeatureAblation, Lime

    field = _text_field(model)
    output, _ = _explained_output(model)  # type: ignore[misc]
    words = str(example.get(field) or "").split()
    if target is None:
        target = _predicted_index(model, output, example)
    if not words:
        return {"features": [], "scores": np.zeros(0), "target": target}
    mask = settings.get("mask", "")

    def texts(perturbations: Any) -> list[Example]:
        rows = perturbations.round().long().tolist()
        return [{**example, field: " ".join(words[i] if i >= 0 else mask for i in row
                                            if i >= 0 or mask)} for row in rows]

    forward = _scores_function(model, output, texts)
    positions = torch.arange(len(words), dtype=torch.float64)[None]
    common = {"target": target, "perturbations_per_eval": PERTURBATIONS_PER_CALL}
    if method == "occlusion":
        scores = FeatureAblation(forward).attribute(positions, baselines=-1.0, **common)
    else:
        lime = Lime(forward, interpretable_model=SkLearnRidge(alpha=1.0),
                    similarity_func=_presence_kernel(float(settings["kernel_width"])))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings["seed"])
            scores = lime.attribute(positions, baselines=-1.0, n_samples=settings["samples"],
                                    **common)
    return {"features": words, "scores": scores[0].double().numpy(), "target": target}


def tabular_baseline(model: Model, dataset: Dataset) -> dict[str, Any]:
    """Per tabular input field of the model, the value KernelSHAP puts in place of an absent
    feature: the column's mean (numbers) or its most frequent value (categories)."""
    import pyarrow.compute as pc

    binding = bind_inputs(model, dataset)
    spec = model.input_spec()
    baseline: dict[str, Any] = {}
    for name in tabular_fields(model):
        column = dataset.table.column(binding[name]) if name in binding else None
        if column is None or column.null_count == len(column):
            baseline[name] = None
        elif isinstance(spec[name], types.Scalar):
            baseline[name] = pc.mean(column).as_py()
        else:
            baseline[name] = pc.mode(column)[0]["mode"].as_py()
    return baseline


def _tabular_attribution(model: Model, example: Example, settings: Mapping[str, Any],
                         target: int | None, baseline: Mapping[str, Any]) -> dict[str, Any]:
    """KernelSHAP over the tabular input fields. A perturbation holds 1 where a field keeps the
    example's value and 0 where it takes the baseline's."""
    import torch
    from captum.attr import KernelShap

    names = list(baseline)
    output, _ = _explained_output(model)  # type: ignore[misc]
    if target is None:
        target = _predicted_index(model, output, example)

    def examples(perturbations: Any) -> list[Example]:
        return [{**example, **{name: example.get(name) if keep > 0.5 else baseline[name]
                               for name, keep in zip(names, row)}}
                for row in perturbations.tolist()]

    shap = KernelShap(_scores_function(model, output, examples))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings["seed"])
        scores = shap.attribute(torch.ones(1, len(names), dtype=torch.float64),
                                baselines=torch.zeros(1, len(names), dtype=torch.float64),
                                target=target, n_samples=settings["samples"],
                                perturbations_per_eval=PERTURBATIONS_PER_CALL)
    return {"features": names, "scores": scores[0].double().numpy(), "target": target}


# --- The job ---------------------------------------------------------------------------------


def _text_length(example: Example, field: str | None) -> int:
    return len(str(example.get(field) or "")) if field else 0


def explain_job(model: Model, dataset: Dataset, rows: Sequence[int], method: str,
                params: Mapping[str, Any] | None = None, target: str | None = None,
                cache: ResultCache | None = None,
                baseline: Mapping[str, Any] | None = None) -> Job[list[Attribution]]:
    """Attributions for `rows` (one each, in order), batched, cached per example under
    (method, model fingerprint, example, params, target). target None: the predicted class.
    ``baseline``: KernelSHAP's absent values (default :func:`tabular_baseline` of ``dataset``;
    a Ray worker holding a block of rows gets the whole dataset's).

    Raises ValueError for a method that does not apply to the model, an unknown parameter or
    an unknown target."""
    settings = _settings(method, params)
    if method not in methods_for(model):
        raise ValueError(f"{METHODS[method].label} does not apply to model {model.name}; "
                         f"its methods: {', '.join(methods_for(model)) or 'none'}")
    embedding_gradients = method in GRADIENT_METHODS and _has_embedding_gradients(model)
    pixel_gradients = method in GRADIENT_METHODS and _has_pixel_gradients(model)
    output = _explained_output(model)
    if embedding_gradients or pixel_gradients:
        targets = model.gradient_targets()  # type: ignore[attr-defined]
    else:
        targets = output[1] if output else ("",)
    if target is not None and (method == "model_salience" or (
            method in GRADIENT_METHODS and not (embedding_gradients or pixel_gradients))):
        what = "attribution" if method == "model_salience" else "gradients"
        raise ValueError(f"model {model.name} outputs the {what} of the class it chooses; "
                         "no other target can be explained")
    target_index = _target_index(targets, target)
    if method != "kernel_shap":
        baseline = {}
    elif baseline is None:
        baseline = tabular_baseline(model, dataset)
    text_field = _text_field(model)
    label, n = METHODS[method].label, len(rows)
    yield Progress(0, n, f"{model.name}: {label} for {n:,} rows")
    examples = [unlabelled_example(model, dataset, row) for row in rows]
    key_params = {"method": method, "settings": settings, "target": target,
                  "baseline": baseline}
    keys = [result_key("explain", model.fingerprint(), example, key_params)
            for example in examples]
    found = cache.get_many(keys) if cache is not None else {}
    results: list[dict[str, Any] | None] = [found.get(key) for key in keys]
    missing = sorted((i for i, result in enumerate(results) if result is None),
                     key=lambda i: _text_length(examples[i], text_field))
    done = n - len(missing)
    yield Progress(done, n, f"{model.name}: {label}")

    def run(indices: Sequence[int]) -> list[dict[str, Any]]:
        chosen = [examples[i] for i in indices]
        if embedding_gradients:
            return _gradient_batch(model, chosen, method, settings,  # type: ignore[arg-type]
                                   target_index)
        if pixel_gradients:
            return _image_gradient_batch(model, chosen, method, settings,  # type: ignore[arg-type]
                                         target_index)
        if method in GRADIENT_METHODS:
            return _output_gradient_batch(model, chosen, method)
        if method == "model_salience":
            return _own_salience_batch(model, chosen)
        if method == "kernel_shap":
            return [_tabular_attribution(model, chosen[0], settings, target_index, baseline)]
        return [_text_attribution(model, chosen[0], method, settings, target_index)]

    # Sized only when something is computed: the cache answers without the model.
    size = _gradient_batch_size(model, method, settings) \
        if missing and method in (*GRADIENT_METHODS, "model_salience") else 1
    start = 0
    for batch_results in _halving_batches(missing, size, run):
        indices = missing[start:start + len(batch_results)]
        start += len(batch_results)
        for i, result in zip(indices, batch_results):
            result["target"] = targets[result["target"]]
            results[i] = result
        if cache is not None:
            cache.put_many((keys[i], results[i]) for i in indices)
        done += len(indices)
        yield Progress(done, n, f"{model.name}: {label}")
    signed = METHODS[method].signed if method != "model_salience" else \
        model.output_spec()[_own_salience(model)[0]].signed  # type: ignore[index,union-attr]
    kind = "image" if pixel_gradients else "features" if method == "kernel_shap" else "tokens"
    image_field = model.image_field if pixel_gradients else None  # type: ignore[attr-defined]
    return [Attribution(
        model.name, method, tuple(result["features"]),
        np.asarray(result["scores"], dtype=np.float64), signed,
        kind=kind, target=result["target"],
        # .item(): results cached by earlier versions hold the number as a one-element array
        completeness_error=(None if result.get("completeness_error") is None
                            else float(np.asarray(result["completeness_error"]).item())),
        text=str(example.get(text_field) or "") if kind == "tokens" else "",
        image=bytes(example[image_field]) if image_field else b"",
        region=tuple(float(x) for x in result.get("region", (0.0, 0.0, 1.0, 1.0))))
        for example, result in zip(examples, results)]  # type: ignore[union-attr]


# --- Word aggregation ------------------------------------------------------------------------


def readable_attribution(attribution: Attribution, words: bool = False) -> Attribution:
    """A token attribution as a person reads it (:func:`litdesk.core.tokens.token_spans`): byte
    pieces joined into characters and word markers dropped, scores summed over what was joined;
    with ``words``, sub-word tokens merged into words and special tokens dropped. Features that
    are not tokens are returned unchanged."""
    if attribution.kind != "tokens":
        return attribution
    spans = [span for span in token_spans(attribution.features, words=words)
             if not (words and span.special)]
    return replace(attribution, features=tuple(span.label for span in spans),
                   scores=sum_over_spans(spans, attribution.scores),
                   word_starts=tuple(span.starts_word for span in spans))


def aggregate_words(attribution: Attribution) -> Attribution:
    """Sub-word tokens merged into words (scores summed), special tokens dropped."""
    return readable_attribution(attribution, words=True)


# --- The ``litdesk explain`` batch command ---------------------------------------------------


def parse_rows(text: str, n: int) -> range:
    """Rows ``a:b`` (Python slice bounds, either may be left out or negative) of ``n`` rows;
    ValueError for anything else."""
    start, colon, stop = text.partition(":")
    try:
        bounds = slice(int(start) if start.strip() else None,
                       int(stop) if stop.strip() else None)
    except ValueError:
        raise ValueError(f"--rows {text!r} is not a:b (whole numbers, either may be left out)"
                         ) from None
    if not colon:
        raise ValueError(f"--rows {text!r} is not a:b (whole numbers, either may be left out)")
    return range(n)[bounds]


def explain_inputs(model_path: Any, data_path: Any, method: str, steps: int | None,
                   rows: str | None, *, device: str | None = None, trust: bool = False
                   ) -> tuple[Dataset, Model, range, dict[str, Any] | None]:
    """What ``litdesk explain`` works from, either engine: the dataset, the model, the rows
    (``--rows``) and the method's parameters; a :class:`~litdesk.core.batch.BatchError` for
    anything the user can fix."""
    from pathlib import Path

    from litdesk.core.batch import BatchError, load_batch_inputs

    if method not in METHODS:
        raise BatchError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if steps is not None and method != "integrated_gradients":
        raise BatchError("--steps applies to integrated_gradients only")
    dataset, (model,) = load_batch_inputs([Path(model_path)], Path(data_path), device=device,
                                          trust=trust)
    try:
        chosen = parse_rows(rows, len(dataset)) if rows else range(len(dataset))
    except ValueError as error:
        raise BatchError(str(error)) from error
    return dataset, model, chosen, {"steps": steps} if steps is not None else None


def explain_to_parquet(model_path: Any, data_path: Any, out: Any, method: str, *,
                       steps: int | None = None, rows: str | None = None,
                       target: str | None = None, device: str | None = None,
                       trust: bool = False, use_cache: bool = True, quiet: bool = True) -> str:
    """Write one row per example (row, target, tokens, scores, and for integrated gradients
    completeness_error) to the Parquet file ``out``; return a summary line. For an image model,
    height and width stand in place of tokens and scores holds the height × width map row by
    row. Any failure the user can fix is a :class:`~litdesk.core.batch.BatchError`."""
    from pathlib import Path

    import pyarrow.parquet as pq

    from litdesk.core.batch import BatchError, ProgressBar
    from litdesk.core.jobs import run_job

    out = Path(out)
    if out.suffix.lower() != ".parquet":
        raise BatchError(f"{out}: the output must be a .parquet file")
    dataset, model, chosen, params = explain_inputs(model_path, data_path, method, steps, rows,
                                                    device=device, trust=trust)
    try:
        bar = ProgressBar(quiet=quiet)
        try:
            attributions = run_job(explain_job(model, dataset, list(chosen), method, params,
                                               target, ResultCache() if use_cache else None),
                                   bar.update)
        finally:
            bar.close()
    except ValueError as error:
        raise BatchError(str(error)) from error
    table = attribution_table(model, method, chosen, attributions)
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return f"{out}: {METHODS[method].label} of {model.name} for {table.num_rows:,} rows"


def attribution_table(model: Model, method: str, rows: Sequence[int],
                      attributions: Sequence[Attribution]) -> Any:
    """What ``litdesk explain`` writes of the ``attributions`` of ``rows`` (both engines): a
    pyarrow table of row, target, tokens (height and width for an image model), scores, and
    for integrated gradients completeness_error."""
    import pyarrow as pa

    columns: dict[str, Any] = {
        "row": pa.array(list(rows), pa.int64()),
        "target": pa.array([a.target for a in attributions], pa.string()),
    }
    if method in GRADIENT_METHODS and _has_pixel_gradients(model):
        columns["height"] = pa.array([a.scores.shape[0] for a in attributions], pa.int32())
        columns["width"] = pa.array([a.scores.shape[1] for a in attributions], pa.int32())
    else:
        columns["tokens"] = pa.array([list(a.features) for a in attributions],
                                     pa.list_(pa.string()))
    columns["scores"] = pa.array([a.scores.ravel().tolist() for a in attributions],
                                 pa.list_(pa.float64()))
    if method == "integrated_gradients":
        columns["completeness_error"] = pa.array(
            [a.completeness_error for a in attributions], pa.float64())
    return pa.table(columns)
