#!/usr/bin/python3
"""Independent reader of TensorBoard event files, for tests.

Parses the TFRecord framing itself (length, masked crc32c of the length, data, masked crc32c of
the data, checked with python3-crcmod) and decodes each record with python3-protobuf message
classes built at run time from a descriptor written here from TensorFlow's field numbers
(event.proto / summary.proto): Event {wall_time = 1 double, step = 2 int64, file_version = 3
string, summary = 5 Summary}, Summary {value = 1 repeated Value}, Value {tag = 1 string,
simple_value = 2 float}. No protoc needed.

usage: tfevents_read.py FILE           prints one line per event:
           version brain.Event:2
           scalar STEP TAG VALUE        (VALUE with repr, so floats round-trip)
       exits 1 with a message on stderr for any framing, checksum or parse error.
"""
import struct
import sys

import crcmod.predefined
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_crc32c = crcmod.predefined.mkCrcFun("crc-32c")


def _masked(data):
    crc = _crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _classes():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="sluice_test_event.proto",
                                             package="sluicetest", syntax="proto3")

    def msg(name, fields):
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = type_name

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    msg("Value", [("tag", 1, F.TYPE_STRING, opt, None),
                  ("simple_value", 2, F.TYPE_FLOAT, opt, None)])
    msg("Summary", [("value", 1, F.TYPE_MESSAGE, rep, ".sluicetest.Value")])
    msg("Event", [("wall_time", 1, F.TYPE_DOUBLE, opt, None),
                  ("step", 2, F.TYPE_INT64, opt, None),
                  ("file_version", 3, F.TYPE_STRING, opt, None),
                  ("summary", 5, F.TYPE_MESSAGE, opt, ".sluicetest.Summary")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    desc = pool.FindMessageTypeByName("sluicetest.Event")
    factory = message_factory.MessageFactory(pool)
    return factory.GetPrototype(desc)


def read_records(path):
    with open(path, "rb") as f:
        buf = f.read()
    pos = 0
    while pos < len(buf):
        if len(buf) - pos < 12:
            raise ValueError("truncated header at offset %d" % pos)
        head = buf[pos:pos + 8]
        (length,) = struct.unpack("<Q", head)
        (hcrc,) = struct.unpack("<I", buf[pos + 8:pos + 12])
        if _masked(head) != hcrc:
            raise ValueError("bad length crc at offset %d" % pos)
        data = buf[pos + 12:pos + 12 + length]
        if len(data) != length or len(buf) < pos + 16 + length:
            raise ValueError("truncated record at offset %d" % pos)
        (dcrc,) = struct.unpack("<I", buf[pos + 12 + length:pos + 16 + length])
        if _masked(data) != dcrc:
            raise ValueError("bad data crc at offset %d" % pos)
        yield data
        pos += 16 + length


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: tfevents_read.py FILE\n")
        return 2
    Event = _classes()
    try:
        for data in read_records(sys.argv[1]):
            ev = Event()
            ev.ParseFromString(data)
            if ev.file_version:
                print("version %s" % ev.file_version)
            if not ev.wall_time > 0:
                raise ValueError("event without wall_time")
            for v in ev.summary.value:
                print("scalar %d %s %r" % (ev.step, v.tag, v.simple_value))
    except Exception as e:  # any framing or parse error is a test failure
        sys.stderr.write("tfevents_read: %s: %s\n" % (sys.argv[1], e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
