/*
 * TensorBoard event files: TFRecord-framed Event protos, hand-encoded.
 *
 * Owns the writer's FILE and path. Messages (field numbers from TensorFlow's event.proto and
 * summary.proto): Event {wall_time = 1 double, step = 2 int64, file_version = 3 string,
 * summary = 5 Summary}, Summary {value = 1 repeated Value}, Value {tag = 1 string,
 * simple_value = 2 float}. Only those fields are written, so the encoder is four wire types:
 * varint, fixed64, fixed32 and length-delimited. Every record is flushed as it is written so a
 * crashed run still leaves readable scalars up to its last log.
 *
 * Threading: a writer belongs to one thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core_internal.h"
#include "sluice/alloc.h"
#include "sluice/tfrecord.h"
#include "sluice/train.h"

struct sl_tfevents {
    FILE *f;
    int err; /* first write error (-errno) */
    char path[1024];
};

/* A growable byte string for one message; sizes here are a few hundred bytes. */
typedef struct pb_buf {
    uint8_t *p;
    size_t len, cap;
    int err;
} pb_buf;

static void pb_put(pb_buf *b, const void *src, size_t n)
{
    if (b->err)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = sl_realloc(b->p, cap);
        if (!p) {
            b->err = SL_ERR_NOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void pb_varint(pb_buf *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            tmp[n] |= 0x80;
        n++;
    } while (v);
    pb_put(b, tmp, n);
}

static void pb_key(pb_buf *b, int field, int wire)
{
    pb_varint(b, (uint64_t)field << 3 | (unsigned)wire);
}

static void pb_double(pb_buf *b, int field, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    uint8_t tmp[8];
    sl__store_u64le(tmp, u);
    pb_key(b, field, 1);
    pb_put(b, tmp, 8);
}

static void pb_float(pb_buf *b, int field, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    uint8_t tmp[4];
    sl__store_u32le(tmp, u);
    pb_key(b, field, 5);
    pb_put(b, tmp, 4);
}

static void pb_bytes(pb_buf *b, int field, const void *p, size_t n)
{
    pb_key(b, field, 2);
    pb_varint(b, n);
    pb_put(b, p, n);
}

static double wall_time(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Frames one serialized Event as a TFRecord record and flushes it. */
static int write_record(sl_tfevents *w, const pb_buf *b)
{
    if (b->err)
        return b->err;
    if (w->err)
        return w->err;
    uint8_t head[12], foot[4];
    sl_tfrecord_frame_header(head, b->len);
    sl_tfrecord_frame_footer(foot, b->p, b->len);
    if (fwrite(head, 1, sizeof head, w->f) != sizeof head ||
        fwrite(b->p, 1, b->len, w->f) != b->len ||
        fwrite(foot, 1, sizeof foot, w->f) != sizeof foot || fflush(w->f) != 0)
        w->err = errno ? -errno : -EIO;
    return w->err;
}

int sl_tfevents_open(sl_tfevents **out, const char *dir)
{
    *out = NULL;
    sl_tfevents *w = sl_calloc(1, sizeof *w);
    if (!w)
        return SL_ERR_NOMEM;
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    const long secs = (long)time(NULL);
    /* Two runs in one second (a quick resume) would share a name: O_EXCL and a suffix keep
     * each run's file its own. */
    for (int k = 0; k < 1000 && !w->f; k++) {
        if (k == 0)
            snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%ld.%s", dir, secs, host);
        else
            snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%ld.%s.%d", dir, secs, host,
                     k);
        w->f = fopen(w->path, "wbx");
        if (!w->f && errno != EEXIST) {
            const int e = -errno;
            sl_free(w);
            return e;
        }
    }
    if (!w->f) {
        sl_free(w);
        return -EEXIST;
    }
    pb_buf b = {0};
    pb_double(&b, 1, wall_time());
    pb_bytes(&b, 3, "brain.Event:2", strlen("brain.Event:2"));
    const int rc = write_record(w, &b);
    sl_free(b.p);
    if (rc < 0) {
        fclose(w->f);
        sl_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

const char *sl_tfevents_path(const sl_tfevents *w)
{
    return w->path;
}

int sl_tfevents_scalars(sl_tfevents *w, int64_t step, const char *const *tags, const float *values,
                        int n)
{
    pb_buf summary = {0}, value = {0}, ev = {0};
    for (int i = 0; i < n; i++) {
        value.len = 0;
        pb_bytes(&value, 1, tags[i], strlen(tags[i]));
        pb_float(&value, 2, values[i]);
        if (value.err) {
            summary.err = value.err;
            break;
        }
        pb_bytes(&summary, 1, value.p, value.len);
    }
    pb_double(&ev, 1, wall_time());
    pb_key(&ev, 2, 0);
    pb_varint(&ev, (uint64_t)step); /* int64: negative steps would be 10 bytes, as protobuf */
    if (summary.err)
        ev.err = summary.err;
    else
        pb_bytes(&ev, 5, summary.p, summary.len);
    const int rc = write_record(w, &ev);
    sl_free(summary.p);
    sl_free(value.p);
    sl_free(ev.p);
    return rc;
}

int sl_tfevents_close(sl_tfevents *w)
{
    if (!w)
        return 0;
    int rc = w->err;
    if (fclose(w->f) != 0 && rc == 0)
        rc = errno ? -errno : -EIO;
    sl_free(w);
    return rc;
}
