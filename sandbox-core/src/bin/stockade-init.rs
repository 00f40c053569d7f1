fn main() {
    stockade::helper_main()
}
