/* Elements: small tuples of named tensors (see sluice/pipeline.h). */
#include <string.h>

#include "engine_internal.h"

/* Every element the engine builds starts all-zero and only ever fills entries below `count`
 * (sl_element_push), so zeroing the used entries leaves the whole struct zero without a
 * memset of all SL_ELEMENT_MAX slots (1.5 KB, which the engine did several times per element). */
void sl_element_release(sl_element *e)
{
    if (!e)
        return;
    const int n = e->count;
    for (int i = 0; i < n; i++)
        sl_tensor_release(&e->tensors[i]); /* zeroes the tensor */
    memset(e->names, 0, (size_t)n * sizeof e->names[0]);
    e->count = 0;
}

int sl_element_find(const sl_element *e, const char *name)
{
    for (int i = 0; i < e->count; i++)
        if (e->names[i] == name || !strcmp(e->names[i], name))
            return i;
    return SL_ERR_NOT_FOUND;
}

const sl_tensor *sl_element_get(const sl_element *e, const char *name)
{
    const int i = sl_element_find(e, name);
    return i >= 0 ? &e->tensors[i] : NULL;
}

int sl_element_push(sl_element *e, const char *name, sl_tensor *t)
{
    if (e->count >= SL_ELEMENT_MAX)
        return SL_ERR_RANGE;
    e->names[e->count] = name;
    e->tensors[e->count] = *t;
    memset(t, 0, sizeof *t);
    e->count++;
    return 0;
}

void sl_element_share(sl_element *dst, const sl_element *src)
{
    *dst = *src;
    for (int i = 0; i < src->count; i++)
        sl_buffer_retain(src->tensors[i].buffer);
}
