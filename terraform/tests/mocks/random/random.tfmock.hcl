# The generated Debezium password: a fixed value, so a test can find it where it is used.
mock_resource "random_password" {
  defaults = {
    result = "MockGeneratedPassword0123456789ab"
  }
}
