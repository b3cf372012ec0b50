from tests.fakevendor.server import main

main()
