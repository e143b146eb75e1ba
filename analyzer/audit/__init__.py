"""Transfer audit of netdump sessions: bursts, retransmissions, ACKs, RTT, stalls, checks."""
from analyzer.audit.sink import AuditSink

__all__ = ["AuditSink"]
