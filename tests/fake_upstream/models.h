/* models.h: GET /v1/models: the models this fake lists. */
#ifndef FAKE_UPSTREAM_MODELS_H
#define FAKE_UPSTREAM_MODELS_H

#include <stdbool.h>

#define DEFAULT_MODEL	"gpt-4o-mini"

struct conn;

/* Answers GET /v1/models. Returns false if c must be destroyed. */
bool	models_handle(struct conn *c);

#endif
