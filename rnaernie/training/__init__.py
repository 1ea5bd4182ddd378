"""Training: motif-aware pretraining (:mod:`.pretrain`) and the fine-tuning tasks (:mod:`.classify`,
:mod:`.structure`, :mod:`.interaction`) with what they share in :mod:`.common`. Imports the model
and the prediction layer; nothing below imports it, and ``import rnaernie`` does not load it."""
