"""The token vocabulary: the official RNAErnie 39-token layout, and the map to multimolecule's.

Ids follow the official ``vocab_1MER.txt`` line for line, so official checkpoints load unchanged:

====  =========================================================
ids   tokens
====  =========================================================
0-6   ``[PAD] [UNK] [CLS] [SEP] [MASK] [DEL] [IND]``
7-34  the 28 RNAcentral RNA-type tokens (``RNaseMRPRNA`` … ``vaultRNA``)
35-38 nucleotides ``A U C G`` (the official file spells id 36 ``T``; it is the same token)
====  =========================================================

IUPAC ambiguity codes (``N R Y S W K M B D H V``) have no token of their own in the official vocabulary
and map to ``[UNK]`` (id 1); multimolecule's vocabulary keeps them apart.
"""

from __future__ import annotations

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEL]", "[IND]")

RNA_TYPES: tuple[str, ...] = (
    "RNaseMRPRNA",
    "RNasePRNA",
    "SRPRNA",
    "YRNA",
    "antisenseRNA",
    "autocatalyticallysplicedintron",
    "guideRNA",
    "hammerheadribozyme",
    "lncRNA",
    "miRNA",
    "miscRNA",
    "ncRNA",
    "other",
    "piRNA",
    "premiRNA",
    "precursorRNA",
    "rRNA",
    "ribozyme",
    "sRNA",
    "scRNA",
    "scaRNA",
    "siRNA",
    "snRNA",
    "snoRNA",
    "tRNA",
    "telomeraseRNA",
    "tmRNA",
    "vaultRNA",
)

NUCLEOTIDES: tuple[str, ...] = ("A", "U", "C", "G")

VOCAB: tuple[str, ...] = SPECIAL_TOKENS + RNA_TYPES + NUCLEOTIDES
TOKEN_TO_ID: dict[str, int] = {tok: i for i, tok in enumerate(VOCAB)}

PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID, DEL_ID, IND_ID = range(7)
TYPE_OFFSET = len(SPECIAL_TOKENS)  # id of the first RNA-type token
NUM_TYPES = len(RNA_TYPES)
NUC_OFFSET = TYPE_OFFSET + NUM_TYPES  # id of "A"
VOCAB_SIZE = len(VOCAB)  # 39
IUPAC_AMBIGUITY = "NRYSWKMBDHV"


def type_id(name: str) -> int:
    """Token id of an RNA type name (one of :data:`RNA_TYPES`)."""
    try:
        return TYPE_OFFSET + RNA_TYPES.index(name)
    except ValueError:
        raise ValueError(
            f"unknown RNA type {name!r}; expected one of {', '.join(RNA_TYPES)}"
        ) from None


# multimolecule's RnaTokenizer vocabulary (28 tokens), in id order.
MULTIMOLECULE_VOCAB: tuple[str, ...] = (
    "<pad>", "<cls>", "<eos>", "<unk>", "<mask>", "<null>",
    "A", "C", "G", "U", "N", "R", "Y", "S", "W", "K", "M", "B", "D", "H", "V",
    "I", "X", "|", ".", "*", "-", "?",
)  # fmt: skip

# Our id -> multimolecule id. Type tokens, [DEL] and [IND] have no counterpart there (-> <unk>).
OURS_TO_MULTIMOLECULE: dict[int, int] = {
    PAD_ID: 0,
    UNK_ID: 3,
    CLS_ID: 1,
    SEP_ID: 2,
    MASK_ID: 4,
    **{NUC_OFFSET + i: MULTIMOLECULE_VOCAB.index(n) for i, n in enumerate(NUCLEOTIDES)},
}
# multimolecule id -> our id; IUPAC codes and the other symbols become [UNK].
MULTIMOLECULE_TO_OURS: dict[int, int] = {
    i: next((o for o, m in OURS_TO_MULTIMOLECULE.items() if m == i), UNK_ID)
    for i in range(len(MULTIMOLECULE_VOCAB))
}
