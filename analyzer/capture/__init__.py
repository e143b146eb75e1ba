"""Capture readers: pcap and pcapng files (optionally gzip-compressed) to UDP datagrams.

    reader = open_captures(paths, ports)
    for item in reader:  # analyzer.datagram.Datagram or Notice, in capture order
        ...
"""
from analyzer.capture.reader import CaptureReader, open_captures
from analyzer.capture.source import CaptureError

__all__ = ["CaptureError", "CaptureReader", "open_captures"]
