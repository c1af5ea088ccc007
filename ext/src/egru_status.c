/* egru_status.c - the message table of egru_status_t, keyed by code. With
 * EGRU_CFG_STATUS_STRINGS = 0 there is no table and egru_status_str gives "" for every code (a
 * firmware that prints codes, not messages, saves about 1 KB of strings). */
#include "edgegru.h"
#include "egru_features.h"

#if EGRU_CFG_STATUS_STRINGS

/* Indexed by -status. Designated initialisers keep each message next to its code, and the
 * size check below fails the build when a status is added without a message. */
static const char *const status_messages[EGRU_STATUS_COUNT] = {
    [-EGRU_OK] = "ok",
    [-EGRU_ERR_NULL_ARG] = "a required pointer argument is NULL",
    [-EGRU_ERR_TRUNCATED] = "the model data is truncated (shorter than its header or file_size)",
    [-EGRU_ERR_MISALIGNED] = "the model buffer is not aligned to 16 bytes",
    [-EGRU_ERR_BAD_MAGIC] = "not an .egru file (bad magic)",
    [-EGRU_ERR_VERSION] = "unsupported .egru format major version",
    [-EGRU_ERR_CHECKSUM] = "CRC-32 mismatch: the model file is corrupt",
    [-EGRU_ERR_BAD_HEADER] = "invalid header field in the model file",
    [-EGRU_ERR_OUT_OF_BOUNDS] = "a table or section of the model file lies outside the file",
    [-EGRU_ERR_BAD_TENSOR] = "invalid tensor record or data (e.g. NaN weight) in the model file",
    [-EGRU_ERR_BAD_LAYER] = "invalid or inconsistent layer record (fields, float params, dtypes)",
    [-EGRU_ERR_UNSUPPORTED] = "the model uses a feature this runtime does not support",
    [-EGRU_ERR_BAD_SHAPE] = "batch and sequence length must be >= 1 and not overflow",
    [-EGRU_ERR_ARENA_TOO_SMALL] = "the arena is smaller than egru_arena_size() requires",
    [-EGRU_ERR_OUTPUT_SIZE] = "the output buffer size does not match the input shape",
    [-EGRU_ERR_TOKEN_RANGE] = "a token id is negative or not below the vocabulary size",
    [-EGRU_ERR_NONFINITE] = "the input contains NaN or infinity",
    [-EGRU_ERR_WRONG_INPUT] = "wrong input kind (token ids vs float features) for this model",
    [-EGRU_ERR_INDEX] = "layer index out of range",
    [-EGRU_ERR_S8_TOO_WIDE] = "an int8 weight matrix has over 131072 columns (int32 overflow)",
    [-EGRU_ERR_WRONG_DTYPE] = "wrong data type for this model (int16x8 models take int16 data)",
};

/* Compile-time check (C99 has no static_assert): the table has exactly one slot per status. */
typedef char egru_status_table_size_check
    [(sizeof status_messages / sizeof status_messages[0] == EGRU_STATUS_COUNT) ? 1 : -1];

const char *egru_status_str(egru_status_t status)
{
    /* Range first, on the code as given: negating an arbitrary int (INT_MIN) would overflow. */
    const int code = (int)status;
    if (code > 0 || code <= -EGRU_STATUS_COUNT || status_messages[-code] == NULL) {
        return "unknown status";
    }
    return status_messages[-code];
}

#else

const char *egru_status_str(egru_status_t status)
{
    (void)status;
    return "";
}

#endif
