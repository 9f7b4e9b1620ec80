// artifact module
