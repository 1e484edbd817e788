"""What the tests and the bench share (`loyalty.testing`): the two runtimes and their heaps,
a running chain, the pcscd starter, the shoppers, the reader client and the reference
sync server. Never used by the product.
"""
