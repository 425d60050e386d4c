"""Loader and scoring hooks of the local stand-in tasks (task YAMLs beside this file; see README.md).

``load`` is each YAML's ``custom_dataset``: it reads ``data/<file>`` (one JSON record per line, each with a
``split`` field) into a ``datasets.DatasetDict``, so no Hub dataset is needed. The scoring and preprocessing hooks
are lm_eval's own functions of the real tasks, re-exported so the stand-ins score exactly as those tasks do.
"""

from __future__ import annotations

import json
from pathlib import Path

from lm_eval.tasks.hellaswag.utils import process_docs as hellaswag_process_docs  # noqa: F401
from lm_eval.tasks.truthfulqa.utils import process_results_mc2  # noqa: F401
from lm_eval.tasks.winogrande.preprocess_winogrande import (doc_to_choice as winogrande_doc_to_choice,  # noqa: F401
                                                            doc_to_target as winogrande_doc_to_target,
                                                            doc_to_text as winogrande_doc_to_text)

DATA = Path(__file__).resolve().parent / "data"


def load(data_file: str, **_):
    """``data/<data_file>`` as one ``datasets.Dataset`` per split (other keyword arguments are lm_eval's metadata)."""
    import datasets

    rows: dict[str, list[dict]] = {}
    for line in (DATA / data_file).read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            rows.setdefault(r.pop("split"), []).append(r)
    return datasets.DatasetDict({s: datasets.Dataset.from_list(v) for s, v in rows.items()})
