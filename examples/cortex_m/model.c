/*
 * model.c - the model blob in its own object, so that a new input recompiles only main.c and the
 * link map shows the blob as this object's .rodata.model (tools/mapsize.py: "model").
 * MODEL_HEADER is the header tools/egru2c.py writes with --name model.
 */
#include <stddef.h>
#include <stdint.h>

#include MODEL_HEADER

extern const uint8_t *const example_model;
extern const size_t example_model_size;
const uint8_t *const example_model = model;
const size_t example_model_size = MODEL_SIZE;
