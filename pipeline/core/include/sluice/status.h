/*
 * sluice status codes.
 *
 * Every sluice function that can fail returns an int: 0 on success, SL_EOF (positive) at the
 * end of data, a negative code on error. I/O failures pass -errno through unchanged; sluice's
 * own codes live at -1000 and below so they can never collide with -errno (Linux errno values
 * stay under 200). The table below is the single source of the codes, their names and their
 * messages. A code's value never changes once released; new codes are appended.
 */
#ifndef SLUICE_STATUS_H
#define SLUICE_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

/* End of data: not an error. */
#define SL_EOF 1

/* X(name, value, message) */
#define SL_ERRNO_MAP(X)                                                      \
    X(INVAL, -1001, "invalid argument")                                      \
    X(NOMEM, -1002, "out of memory")                                         \
    X(CORRUPT, -1003, "data corrupt: checksum mismatch or impossible value") \
    X(TRUNCATED, -1004, "file truncated")                                    \
    X(FORMAT, -1005, "not a file of the expected format")                    \
    X(VERSION, -1006, "unsupported format version")                          \
    X(RANGE, -1007, "index out of range")                                    \
    X(CANCELLED, -1008, "operation cancelled")                               \
    X(CLOSED, -1009, "queue closed")                                         \
    X(STALE_INDEX, -1010, "index does not describe this file")               \
    X(UNSUPPORTED, -1011, "unsupported feature")                             \
    X(CODEC, -1012, "compression codec failed")                              \
    X(SCHEMA, -1013, "record does not match the schema")                     \
    X(TYPE, -1014, "wrong type")                                             \
    X(NOT_FOUND, -1015, "not found")                                         \
    X(BUDGET, -1016, "memory budget exceeded")                               \
    X(SYNTAX, -1017, "syntax error")                                         \
    X(NOT_CHECKPOINTABLE, -1018, "stage cannot be checkpointed")             \
    X(TOO_LARGE, -1019, "value too large")                                   \
    X(EXISTS, -1020, "already exists")                                       \
    X(NONFINITE, -1021, "value is not finite (NaN or infinity)")

enum {
#define SL__ERR_ENUM(name, value, msg) SL_ERR_##name = (value),
    SL_ERRNO_MAP(SL__ERR_ENUM)
#undef SL__ERR_ENUM
};

/* Human-readable text for any return code: sluice codes, -errno, 0 and SL_EOF. Never NULL. */
const char *sl_strerror(int code);

/* The code's symbolic name ("SL_ERR_CORRUPT", "ENOENT", "SL_EOF"). Never NULL. */
const char *sl_err_name(int code);

#ifdef __cplusplus
}
#endif
#endif
