/* egru_session_s16.h - what egru_session.c calls for int16x8 sessions (egru_session_s16.c); not
 * part of the API. The public functions dispatch here when the model's quant_version is 2. */
#ifndef EGRU_SESSION_S16_H
#define EGRU_SESSION_S16_H

#include "../egru_internal.h"

/* egru_session_check of an int16x8 model: EGRU_OK, or EGRU_ERR_UNSUPPORTED and the first layer
 * outside the allow-list (Embedding, Masking, Dense, Activation, Affine, LayerNorm, and GRU /
 * LSTM / SimpleRNN going forwards in one direction, none after a recurrent layer that returns
 * only its last state). */
egru_status_t egru_s16_session_check(const egru_model_t *model, uint32_t *layer_index);

/* egru_session_size / egru_session_init of an int16x8 model (the arguments already checked for
 * NULL; *session zeroed by the caller, and left zeroed on error). */
egru_status_t egru_s16_session_size(const egru_model_t *model, uint32_t batch, size_t *bytes);
egru_status_t egru_s16_session_init(egru_session_t *session, const egru_model_t *model,
                                    uint32_t batch, void *mem, size_t bytes);

/* egru_session_reset of an initialised int16x8 session. */
void egru_s16_session_reset(egru_session_t *session);

#endif /* EGRU_SESSION_S16_H */
