"""Layer 8: discovery (Kademlia DHT) and the durable local share store."""
