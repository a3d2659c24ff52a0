"""What a plugin author imports: LIT's field-type vocabulary and the Model/Dataset contracts.

Importing this package loads neither Qt nor torch.
"""

from litdesk.api.dataset import Dataset
from litdesk.api.files import read_json_document, single_matching_file
from litdesk.api.model import LoadOptions, Model, ModelLoadError, TrustRequired
from litdesk.api.types import (
    AttentionHeads,
    Boolean,
    CategoryLabel,
    Embeddings,
    FeatureSalience,
    FieldType,
    GeneratedText,
    ImageBytes,
    ImagePath,
    MulticlassPreds,
    RegressionScore,
    Scalar,
    Spec,
    TextSegment,
    TokenEmbeddings,
    TokenGradients,
    Tokens,
    TokenSalience,
    TokenTopKPreds,
    find_spec_keys,
    first_spec_key,
)

__all__ = [
    "AttentionHeads",
    "Boolean",
    "CategoryLabel",
    "Dataset",
    "Embeddings",
    "FeatureSalience",
    "FieldType",
    "GeneratedText",
    "ImageBytes",
    "ImagePath",
    "LoadOptions",
    "Model",
    "ModelLoadError",
    "MulticlassPreds",
    "RegressionScore",
    "Scalar",
    "Spec",
    "TextSegment",
    "TokenEmbeddings",
    "find_spec_keys",
    "first_spec_key",
    "TokenGradients",
    "TokenSalience",
    "TokenTopKPreds",
    "Tokens",
    "TrustRequired",
    "read_json_document",
    "single_matching_file",
]
