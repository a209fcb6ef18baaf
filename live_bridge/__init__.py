"""The live bridge (to come): MQTT topics and payloads, simulated devices, the embedded
broker, and the shadow runner that compares the twin with what production did."""
