package keyspace

var expireCommands = []*Spec{}
