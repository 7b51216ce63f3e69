"""One inference path, shared by `test`, `predict` and the validation inside `train`.

    restore.py   rebuild a network, its classes, normalization and input size from a checkpoint alone
    data.py      the data a checkpoint is tested on: a split through the evaluation pipeline
    files.py     image files for `predict`, decoded and resized as the training data was
    run.py       batching and the forward pass (log-probabilities, optional flip TTA)
    metrics.py   loss, top-1, top-k, per-class precision/recall/F1, confusion: one implementation, percent
    reports.py   metrics.json, predictions.csv, the confusion matrix and the console report
"""
