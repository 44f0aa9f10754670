// prelude "book": the bookstore's model class, as the README's "Fire events" declares it, and one book.
declare class Book {
  constructor(id: number, title: string, pages: number, fiction: boolean, ownerId: string);
  id: number;
  title: string;
  pages: number;
  fiction: boolean;
  ownerId: string;
}
declare const book: Book;
