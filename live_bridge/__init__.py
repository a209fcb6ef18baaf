"""The live bridge: real devices and production's events in, the twin beside production.

Modules (one purpose each):

- ``brokers``    an embedded broker (amqtt in its own process), Mosquitto for tests and
                 benchmarks, and broker URLs (``mqtt://user:pass@host:port``, ``mqtts://``).
- ``mqtt``       one paho client setup for everything here: reconnect with back-off,
                 persistent sessions, QoS 1, a bound on unacknowledged publishes.
- ``sparkplug``  Sparkplug B topics and payloads (protobuf classes compiled from
                 ``sparkplug_b.proto``), an edge node's birth/data/death, and the host's
                 view of each edge node (``seq``, ``bdSeq``, aliases).
- ``registry``   which device is which: Sparkplug devices and plain JSON topics mapped to a
                 household or building, a kind and a unit.
- ``ingest``     validate, dedupe, order and batch readings per tick into the arrays the
                 detectors read; everything refused is counted by reason and dead-lettered.
- ``recorder``   every live message as it arrived, for replay.
- ``devices``    the twin's own sensors published as hardware (``twin devices``).
- ``shadow``     the twin run in real time on live readings, compared with production.
- ``fork``       a what-if from production's state.

Conventions shared by all of them:

- **Time** is minutes since the community's epoch (the store's), as in the twin. Wire
  timestamps are Unix milliseconds (Sparkplug B's convention); ``epoch_ms`` converts.
- **Names.** The community id is the Sparkplug group; a building's gateway is the edge node
  ``bldg-{b:03d}``; its devices are ``hh-{h:05d}-water`` (litres in the interval),
  ``hh-{h:05d}-power`` (kWh in the interval), ``hh-{h:05d}-smoke`` (alarm), ``main`` (the
  building's water main, litres per hour) and ``bin`` (fill, 0-1).
"""
